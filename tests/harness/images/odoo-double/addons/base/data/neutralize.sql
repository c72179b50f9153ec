-- Neutralization of base (as odoo/addons/base/data/neutralize.sql does it):
-- no outgoing mail: every mail server off, plus an active dummy server so that the smtp_*
-- command-line fallback is never used
UPDATE ir_mail_server SET active = false;
INSERT INTO ir_mail_server (name, smtp_host, smtp_port, smtp_encryption, smtp_authentication, active)
VALUES ('neutralization - disable emails', 'invalid', 1025, 'none', 'login', true);
-- every scheduled action off, except the autovacuum
UPDATE ir_cron SET active = false
 WHERE id NOT IN (SELECT res_id FROM ir_model_data
                   WHERE model = 'ir.cron' AND module = 'base' AND name = 'autovacuum_job');
-- the neutralization watermark
INSERT INTO ir_config_parameter (key, value) VALUES ('database.is_neutralized', true)
    ON CONFLICT (key) DO UPDATE SET value = true;
-- no webhooks from server actions
UPDATE ir_act_server SET webhook_url = NULL WHERE webhook_url IS NOT NULL;
