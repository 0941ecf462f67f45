"""The database refuses to rewrite or delete audit history, whatever the application does.

An UPDATE is allowed only while the row is still open (`executing`, `pending_approval`: see
ActionAudit.OPEN_STATUSES), and never changes what was proposed (workspace, job, step, action,
arguments, creation time). A DELETE is allowed only inside a transaction that set
`SET LOCAL audit.archiving = 'on'` (the archive_audit command, after it has verified the archive
file) and only of final rows. TRUNCATE is not covered: row triggers do not fire for it, and the
test suite's flush needs it; production should run the application as a role without TRUNCATE.
"""

from django.db import migrations

GUARD = """
CREATE FUNCTION action_audit_guard() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    open_statuses text[] := ARRAY['executing', 'pending_approval'];
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF coalesce(current_setting('audit.archiving', true), '') <> 'on' THEN
            RAISE EXCEPTION 'action_audit rows cannot be deleted (row %): only archive_audit may',
                OLD.id USING ERRCODE = 'insufficient_privilege';
        END IF;
        IF OLD.status = ANY(open_statuses) THEN
            RAISE EXCEPTION 'action_audit row % is still %: it cannot be archived',
                OLD.id, OLD.status USING ERRCODE = 'insufficient_privilege';
        END IF;
        RETURN OLD;
    END IF;
    IF NOT (OLD.status = ANY(open_statuses)) THEN
        RAISE EXCEPTION 'action_audit row % is final (%): it cannot be changed', OLD.id, OLD.status
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NEW.id IS DISTINCT FROM OLD.id
        OR NEW.workspace_id IS DISTINCT FROM OLD.workspace_id
        OR NEW.job_id IS DISTINCT FROM OLD.job_id
        OR NEW.call_key IS DISTINCT FROM OLD.call_key
        OR NEW.action IS DISTINCT FROM OLD.action
        OR NEW.arguments IS DISTINCT FROM OLD.arguments
        OR NEW.created_at IS DISTINCT FROM OLD.created_at THEN
        RAISE EXCEPTION 'action_audit row %: what was proposed cannot be changed', OLD.id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER action_audit_guard
    BEFORE UPDATE OR DELETE ON action_audit
    FOR EACH ROW EXECUTE FUNCTION action_audit_guard();
"""

DROP_GUARD = """
DROP TRIGGER IF EXISTS action_audit_guard ON action_audit;
DROP FUNCTION IF EXISTS action_audit_guard();
"""


class Migration(migrations.Migration):
    dependencies = [("audit", "0003_admin_indexes")]

    operations = [migrations.RunSQL(GUARD, DROP_GUARD)]
