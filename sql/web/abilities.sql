-- What the person may do, read once per page so it shows only the buttons they may use: admin,
-- and the project patterns they operate and edit (the database checks each action again).
SELECT sisyphus.is_admin() AS admin, sisyphus.my_patterns('operator') AS operate,
       sisyphus.my_patterns('editor') AS edit
