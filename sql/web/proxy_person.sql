-- As sign_in.sql, for a person named by a trusted reverse proxy's header ($1, a login).
SELECT set_config('sisyphus.on_behalf_of', p, true) AS person, set_config('role', p, true) AS role,
       set_config('jit', 'off', true) AS jit
  FROM (SELECT sisyphus.web_proxy_person($1::name)::text AS p) who
