-- A webhook's client certificate for mutual TLS: the certificate chain
-- (PEM, public) and its private key, encrypted like the signing secrets
-- ("sealed:v1:…", under the server key of `secret_key_file`). Both NULL
-- when the webhook has none.
--
-- Signing secrets stored in clear by earlier versions are encrypted when
-- the server starts (it needs the key, which SQL does not have).
ALTER TABLE webhooks ADD COLUMN client_certificate TEXT;
ALTER TABLE webhooks ADD COLUMN client_key TEXT;
