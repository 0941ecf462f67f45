"""Moving old, final audit rows to verified gzip JSON Lines files, then out of the table.

The manifest is the commit point. A run (1) writes the rows to `<name>.jsonl.gz`, (2) reads the
file back and checks it, (3) writes `<name>.manifest.json` atomically, (4) deletes exactly the
rows listed in the file, batch by batch, (5) marks the manifest complete. A crash before (3)
leaves a file without manifest, which the next run discards (no row was deleted); a crash after
it leaves a manifest that is not complete, which the next run verifies and finishes before it
archives anything new, so no row is lost and none lands in two archives.
"""

import gzip
import hashlib
import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from django.db import connection, transaction
from django.utils import timezone

from audit.models import ActionAudit, AuditArchive

FORMAT = "action_audit.jsonl.gz/1"
MANIFEST_SUFFIX = ".manifest.json"
DATA_SUFFIX = ".jsonl.gz"
PARTIAL_SUFFIX = ".jsonl.gz.partial"
# pg_advisory_lock key: one archiver at a time, or two runs could write the same rows twice.
_LOCK_KEY = 0x61756469745F6172  # "audit_ar"
_COLUMNS = [f.column for f in ActionAudit._meta.concrete_fields]


class ArchiveError(RuntimeError):
    """The archive cannot go on safely; nothing was deleted that is not in a verified file."""


@dataclass
class ArchiveReport:
    dry_run: bool
    cutoff: datetime
    candidates: int = 0  # final rows older than the cutoff when the run started
    archived: int = 0  # rows written and deleted by this run (new file)
    resumed: int = 0  # rows deleted while finishing an earlier, interrupted run
    discarded: list[str] = field(default_factory=list)  # unfinished files without manifest
    pending: list[str] = field(default_factory=list)  # manifests of interrupted runs
    files: list[str] = field(default_factory=list)  # archives this run completed


def archive_audit(
    *,
    older_than_days: int,
    output_dir: Path,
    batch_size: int = 1000,
    dry_run: bool = False,
    now: datetime | None = None,
) -> ArchiveReport:
    """Archive final rows created more than `older_than_days` ago into `output_dir`."""
    if older_than_days < 1 or batch_size < 1:
        raise ArchiveError("--older-than-days and --batch-size must be at least 1")
    now = now or timezone.now()
    report = ArchiveReport(dry_run=dry_run, cutoff=now - timedelta(days=older_than_days))
    candidates = ActionAudit.objects.filter(
        created_at__lt=report.cutoff, status__in=ActionAudit.FINAL_STATUSES
    ).order_by("id")
    report.candidates = candidates.count()
    report.pending = [path.name for path, _ in _pending(output_dir)]
    if dry_run:
        return report
    output_dir = output_dir.resolve()
    output_dir.mkdir(parents=True, exist_ok=True)
    with _single_archiver():
        _refuse_if_interrupted_elsewhere(output_dir)
        report.discarded = _discard_unfinished(output_dir)
        for manifest_path, manifest in _pending(output_dir):
            report.resumed += _finish(manifest_path, manifest, batch_size=batch_size)
            report.files.append(manifest["file"])
        report.candidates = candidates.count()  # what the interrupted runs left
        if report.candidates:
            manifest_path, manifest = _write(candidates, output_dir, report.cutoff, now, batch_size)
            report.archived = _finish(manifest_path, manifest, batch_size=batch_size, verified=True)
            report.files.append(manifest["file"])
    return report


def verify_archive(data_path: Path, manifest: dict) -> None:
    """Raise ArchiveError unless the file holds exactly what its manifest says."""
    if _sha256(data_path) != manifest["sha256"]:
        raise ArchiveError(f"{data_path.name}: sha256 differs from its manifest")
    rows, first, last, previous = 0, None, None, None
    for row in _read_rows(data_path):
        if previous is not None and row["id"] <= previous:
            raise ArchiveError(f"{data_path.name}: ids out of order at {row['id']}")
        rows, previous = rows + 1, row["id"]
        first = row["id"] if first is None else first
        last = row["id"]
    if (rows, first, last) != (manifest["rows"], manifest["first_id"], manifest["last_id"]):
        raise ArchiveError(
            f"{data_path.name}: holds {rows} rows, ids {first}..{last}; manifest says "
            f"{manifest['rows']} rows, ids {manifest['first_id']}..{manifest['last_id']}"
        )


def _pending(output_dir: Path) -> list[tuple[Path, dict]]:
    """Manifests of runs that wrote and verified their file but did not finish deleting."""
    if not output_dir.is_dir():
        return []
    manifests = [
        (path, _read_manifest(path)) for path in sorted(output_dir.glob("*.manifest.json"))
    ]
    return [(path, manifest) for path, manifest in manifests if manifest["completed_at"] is None]


def _write(candidates, output_dir: Path, cutoff: datetime, now: datetime, batch_size: int):
    partial = output_dir / f"action_audit-{now:%Y%m%dT%H%M%S%fZ}{PARTIAL_SUFFIX}"
    rows, first, last = 0, None, None
    with partial.open("wb") as raw:
        # mtime=0: the same rows always make the same bytes.
        with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
            for row in candidates.values(*_COLUMNS).iterator(chunk_size=batch_size):
                line = json.dumps(row, default=_json_value, sort_keys=True)
                gz.write(line.encode() + b"\n")
                rows, last = rows + 1, row["id"]
                first = row["id"] if first is None else first
        raw.flush()
        os.fsync(raw.fileno())
    # Id ranges of archives never overlap (archived rows are gone), so the name is unique.
    stem = f"action_audit-{first:012d}-{last:012d}"
    data_path = partial.replace(output_dir / f"{stem}{DATA_SUFFIX}")
    manifest = {
        "format": FORMAT,
        "file": data_path.name,
        "table": ActionAudit._meta.db_table,
        "rows": rows,
        "first_id": first,
        "last_id": last,
        "sha256": _sha256(data_path),
        "cutoff": cutoff.isoformat(),
        "written_at": now.isoformat(),
        "completed_at": None,
    }
    verify_archive(data_path, manifest)
    # Recorded before the manifest: from here on, a run aimed elsewhere refuses to start.
    AuditArchive.objects.create(
        directory=str(output_dir),
        file=data_path.name,
        rows=rows,
        first_id=first,
        last_id=last,
        sha256=manifest["sha256"],
        cutoff=cutoff,
        written_at=now,
    )
    manifest_path = output_dir / f"{stem}{MANIFEST_SUFFIX}"
    _write_manifest(manifest_path, manifest)
    return manifest_path, manifest


def _finish(manifest_path: Path, manifest: dict, *, batch_size: int, verified=False) -> int:
    """Verify the file (again), delete the rows it lists, and mark the manifest complete."""
    data_path = manifest_path.parent / manifest["file"]
    if not data_path.exists():
        raise ArchiveError(f"{manifest_path.name} names {manifest['file']}, which is missing")
    if not verified:
        verify_archive(data_path, manifest)
    cutoff = datetime.fromisoformat(manifest["cutoff"])
    deleted, batch = 0, []
    for row in _read_rows(data_path):
        batch.append(row["id"])
        if len(batch) == batch_size:
            deleted += _delete(batch, cutoff)
            batch = []
    if batch:
        deleted += _delete(batch, cutoff)
    completed_at = timezone.now()
    manifest["completed_at"] = completed_at.isoformat()
    _write_manifest(manifest_path, manifest)
    AuditArchive.objects.filter(directory=str(manifest_path.parent), file=data_path.name).update(
        completed_at=completed_at
    )
    return deleted


def _delete(ids: list[int], cutoff: datetime) -> int:
    # The trigger refuses deletes outside this setting; it is switched off again before commit
    # so that it cannot outlive this batch even inside a caller's transaction.
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL audit.archiving = 'on'")
        cursor.execute(
            "DELETE FROM action_audit WHERE id = ANY(%s) AND created_at < %s", [ids, cutoff]
        )
        deleted = cursor.rowcount
        cursor.execute("SET LOCAL audit.archiving = 'off'")
    return deleted


def _discard_unfinished(output_dir: Path) -> list[str]:
    """Remove data files that never got a manifest: their rows were not deleted."""
    discarded = []
    for partial in sorted(output_dir.glob(f"*{PARTIAL_SUFFIX}")):
        partial.unlink()
        discarded.append(partial.name)
    for data_path in sorted(output_dir.glob(f"*{DATA_SUFFIX}")):
        manifest_path = data_path.with_name(data_path.name[: -len(DATA_SUFFIX)] + MANIFEST_SUFFIX)
        if not manifest_path.exists():
            data_path.unlink()
            discarded.append(data_path.name)
    for temp in output_dir.glob(f"*{MANIFEST_SUFFIX}.tmp"):
        temp.unlink()
    # Recorded, but the run stopped before its manifest: none of its rows was deleted.
    for record in AuditArchive.objects.filter(directory=str(output_dir), completed_at=None):
        if not (output_dir / record.file.replace(DATA_SUFFIX, MANIFEST_SUFFIX)).exists():
            record.delete()
    return discarded


def _refuse_if_interrupted_elsewhere(output_dir: Path) -> None:
    elsewhere = (
        AuditArchive.objects.filter(completed_at=None).exclude(directory=str(output_dir)).first()
    )
    if elsewhere is not None:
        raise ArchiveError(
            f"an interrupted archive ({elsewhere.file}) waits in {elsewhere.directory}: rerun "
            f"with --output-dir {elsewhere.directory} first, or its rows would be archived twice"
        )


def _json_value(value):
    # Full precision, unlike DjangoJSONEncoder, which cuts datetimes to milliseconds.
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"cannot archive a {type(value).__name__}")


def _read_rows(data_path: Path) -> Iterator[dict]:
    with gzip.open(data_path, "rt", encoding="utf-8") as lines:
        for line in lines:
            yield json.loads(line)


def _read_manifest(path: Path) -> dict:
    manifest = json.loads(path.read_text())
    if manifest.get("format") != FORMAT:
        raise ArchiveError(f"{path.name}: unknown format {manifest.get('format')!r}")
    return manifest


def _write_manifest(path: Path, manifest: dict) -> None:
    # Write, fsync, rename, fsync the directory: the manifest is there whole or not at all.
    temp = path.with_name(path.name + ".tmp")
    with temp.open("w") as out:
        json.dump(manifest, out, indent=2, sort_keys=True)
        out.flush()
        os.fsync(out.fileno())
    temp.replace(path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as data:
        for chunk in iter(lambda: data.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@contextmanager
def _single_archiver() -> Iterator[None]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [_LOCK_KEY])
        if not cursor.fetchone()[0]:
            raise ArchiveError("another archive_audit is running")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [_LOCK_KEY])
