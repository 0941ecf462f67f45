"""Keep every reason: why an action was held and what a human decided get fields of their own.

Before, a decision wrote over the hold (`reason` became `rejected_by_reviewer`, or blank once
an approved action ran) and the hold's details sat in `result`. This migration

- adds `hold_reason`, `hold_details`, `decision` and `approved_arguments_hash`;
- adds `recipients` and `recipient_domains`, computed by PostgreSQL from the arguments (to, cc
  and bcc) and GIN-indexed, for the admin's search and lists;
- fills the new fields from what existing rows still say: a pending row's reason and details
  become its hold; a decided row gets `approve` or `reject` (a reviewer's rejection wrote
  `rejected_by_reviewer`; every other decision was an approval, which required the row's own
  hash); a row that was held but whose hold reason a decision overwrote says `not_recorded`
  rather than guess;
- adds the proxy model `PendingApproval`, the admin's review queue;
- extends the guard trigger (migration 0004): once written, the hold and the decision never
  change, even while the row is still open.

The backfill edits final rows, which the guard refuses, so it runs with the trigger disabled,
inside this migration's transaction.
"""

import django.contrib.postgres.fields
import django.contrib.postgres.indexes
import django.contrib.postgres.search
import django.db.models.fields.json
from django.db import migrations, models

import audit.models

FUNCTIONS = r"""
CREATE FUNCTION action_audit_recipients(arguments jsonb) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(array_agg(DISTINCT lower(btrim(address)) ORDER BY lower(btrim(address))),
                    '{}')
    FROM jsonb_each(CASE WHEN jsonb_typeof(arguments) = 'object' THEN arguments
                         ELSE '{}'::jsonb END) AS field(name, value),
         jsonb_array_elements_text(CASE WHEN jsonb_typeof(field.value) = 'array' THEN field.value
                                        ELSE '[]'::jsonb END) AS address
    WHERE field.name IN ('to', 'cc', 'bcc')
$$;

CREATE FUNCTION action_audit_recipient_domains(arguments jsonb) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(array_agg(DISTINCT domain ORDER BY domain), '{}')
    FROM unnest(action_audit_recipients(arguments)) AS address,
         rtrim(substring(address FROM '@([^@]*)$'), '.') AS domain
    WHERE domain <> ''
$$;
"""

DROP_FUNCTIONS = """
DROP FUNCTION IF EXISTS action_audit_recipient_domains(jsonb);
DROP FUNCTION IF EXISTS action_audit_recipients(jsonb);
"""

BACKFILL = """
-- ALTER TABLE refuses to run while deferred (foreign key) checks are queued: run them now.
SET CONSTRAINTS ALL IMMEDIATE;
ALTER TABLE action_audit DISABLE TRIGGER action_audit_guard;

UPDATE action_audit
SET decision = CASE WHEN status = 'rejected' AND reason = 'rejected_by_reviewer'
                    THEN 'reject' ELSE 'approve' END
WHERE decided_at IS NOT NULL;

UPDATE action_audit SET approved_arguments_hash = arguments_hash WHERE decision = 'approve';

-- Held rows: still pending, decided, or expired undecided.
UPDATE action_audit
SET hold_reason = CASE
        WHEN status = 'pending_approval' THEN reason
        -- An approved row that has not finished yet still carries its hold reason.
        WHEN status = 'executing' AND reason <> '' THEN reason
        ELSE 'not_recorded'
    END,
    hold_details = CASE WHEN jsonb_typeof(result -> 'details') = 'array'
                        THEN result -> 'details' ELSE '[]'::jsonb END,
    result = CASE WHEN jsonb_typeof(result -> 'details') = 'array'
                  THEN result - 'details' ELSE result END
WHERE status IN ('pending_approval', 'expired') OR decided_at IS NOT NULL;

SET CONSTRAINTS ALL IMMEDIATE;
ALTER TABLE action_audit ENABLE TRIGGER action_audit_guard;
SET CONSTRAINTS ALL DEFERRED;
"""

GUARD = """
CREATE OR REPLACE FUNCTION action_audit_guard() RETURNS trigger LANGUAGE plpgsql AS $$
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
    IF OLD.hold_reason <> '' AND (NEW.hold_reason IS DISTINCT FROM OLD.hold_reason
                                  OR NEW.hold_details IS DISTINCT FROM OLD.hold_details) THEN
        RAISE EXCEPTION 'action_audit row %: why it was held cannot be changed', OLD.id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF OLD.decision <> '' AND (NEW.decision IS DISTINCT FROM OLD.decision
                               OR NEW.decided_by IS DISTINCT FROM OLD.decided_by
                               OR NEW.decided_at IS DISTINCT FROM OLD.decided_at
                               OR NEW.approved_arguments_hash
                                  IS DISTINCT FROM OLD.approved_arguments_hash) THEN
        RAISE EXCEPTION 'action_audit row %: a decision cannot be changed', OLD.id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$$;
"""

# Migration 0004's function, restored when this migration is reversed.
OLD_GUARD = """
CREATE OR REPLACE FUNCTION action_audit_guard() RETURNS trigger LANGUAGE plpgsql AS $$
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
"""


class Migration(migrations.Migration):
    dependencies = [("audit", "0008_decide_action_permission")]

    operations = [
        migrations.RunSQL(FUNCTIONS, DROP_FUNCTIONS),
        migrations.RemoveIndex(model_name="actionaudit", name="action_audit_recipient_idx"),
        migrations.AddField(
            model_name="actionaudit",
            name="approved_arguments_hash",
            field=models.CharField(blank=True, max_length=64),
        ),
        migrations.AddField(
            model_name="actionaudit",
            name="decision",
            field=models.CharField(
                blank=True, choices=[("approve", "Approve"), ("reject", "Reject")], max_length=8
            ),
        ),
        migrations.AddField(
            model_name="actionaudit",
            name="hold_details",
            field=models.JSONField(blank=True, default=list),
        ),
        migrations.AddField(
            model_name="actionaudit",
            name="hold_reason",
            field=models.CharField(blank=True, max_length=64),
        ),
        migrations.AddField(
            model_name="actionaudit",
            name="recipient_domains",
            field=models.GeneratedField(
                db_persist=True,
                expression=audit.models.RecipientDomains(models.F("arguments")),
                output_field=django.contrib.postgres.fields.ArrayField(
                    base_field=models.TextField(), size=None
                ),
            ),
        ),
        migrations.AddField(
            model_name="actionaudit",
            name="recipients",
            field=models.GeneratedField(
                db_persist=True,
                expression=audit.models.Recipients(models.F("arguments")),
                output_field=django.contrib.postgres.fields.ArrayField(
                    base_field=models.TextField(), size=None
                ),
            ),
        ),
        migrations.AddIndex(
            model_name="actionaudit",
            index=django.contrib.postgres.indexes.GinIndex(
                fields=["recipients"], name="action_audit_recipients_idx"
            ),
        ),
        migrations.AddIndex(
            model_name="actionaudit",
            index=django.contrib.postgres.indexes.GinIndex(
                fields=["recipient_domains"], name="action_audit_domains_idx"
            ),
        ),
        migrations.AddIndex(
            model_name="actionaudit",
            index=django.contrib.postgres.indexes.GinIndex(
                django.contrib.postgres.search.SearchVector(
                    django.db.models.fields.json.KeyTextTransform("subject", "arguments"),
                    config="simple",
                ),
                name="action_audit_subject_idx",
            ),
        ),
        migrations.AddIndex(
            model_name="actionaudit",
            index=models.Index(
                condition=models.Q(("decision", ""), _negated=True),
                fields=["decision", "-created_at"],
                name="action_audit_decision_idx",
            ),
        ),
        migrations.CreateModel(
            name="PendingApproval",
            fields=[],
            options={
                "verbose_name": "pending approval",
                "verbose_name_plural": "pending approvals",
                "proxy": True,
                "indexes": [],
                "constraints": [],
            },
            bases=("audit.actionaudit",),
        ),
        migrations.RunSQL(BACKFILL, migrations.RunSQL.noop),
        migrations.RunSQL(GUARD, OLD_GUARD),
    ]
