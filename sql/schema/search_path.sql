-- Migrations create their objects in schema `sisyphus`.
SET search_path TO sisyphus
