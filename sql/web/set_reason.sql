-- The reason a person gave for the change this transaction makes (the audit's `reason`).
SELECT set_config('sisyphus.reason', $1::text, true)
