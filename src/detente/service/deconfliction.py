"""Submitting, replacing and cancelling activities and zones, atomically.

One submission is one write transaction: the write lock is taken first, then the
new volumes are checked against everything committed and against each other,
then stored with the conflicts they cause. A submission that enters a prohibited
zone is refused as a whole unless the submitter overrides.

Several callers' submissions can also go through as one transaction
(:meth:`Deconfliction.submit_each`): detection, bookkeeping and the commit are paid
once for all of them, each caller still gets its own result, and the audit log names
each change's own actor. It is what many small submissions arriving at once cost.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from ..core.candidates import Parallel
from ..core.detect import (
    Pairs,
    candidates_between,
    candidates_within,
    evaluate_conflicts,
    evaluate_violations,
)
from ..core.gcpause import gc_paused
from ..core.instants import parse_instant
from ..core.minima import Minima, Separation
from ..core.scenario import Scenario
from ..core.volumes import VolumeSet
from ..errors import AlreadyExists, DetenteError, InputError, NotFound, Refused, StaleVersion
from ..store.contract import ActivityRow, ConflictRow, ConflictUpsert, Store, StoredVolumes
from .journal import SYSTEM, Bus, Journal, transaction
from .lifecycle import read_policy, record_changes

# Above this many new volumes per stored one, detection loads the stored set once
# and joins in memory instead of one R*Tree query per new volume.
BULK_RATIO = 1 / 50

Key = tuple[str, str]  # (party, activity or zone id)


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass
class SubmitResult:
    created: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    zones: list[str] = field(default_factory=list)
    conflicts: list[dict[str, Any]] = field(default_factory=list)
    violations: list[dict[str, Any]] = field(default_factory=list)
    resolved: list[int] = field(default_factory=list)
    # The rows of the conflicts the transaction opened, changed or resolved, as it
    # left them (for the answer: read back once, inside it, where their events were
    # made; shared by the results of a combined transaction).
    rows: dict[int, ConflictRow] = field(default_factory=dict, repr=False)
    # Combined submissions: each activity's row as written (its answer shows it).
    owners: dict[Key, ActivityRow] = field(default_factory=dict, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {"created": self.created, "replaced": self.replaced, "zones": self.zones,
                "conflicts": self.conflicts, "violations": self.violations,
                "resolved": self.resolved}


@dataclass
class Submission:
    """One caller's activities, for :meth:`Deconfliction.submit_each`."""

    scenario: Scenario
    actor: str
    override: bool = False
    versions: Mapping[Key, int | None] | None = None
    details: Mapping[Key, tuple[str | None, str | None]] | None = None


def _check_versions(versions: Mapping[Key, int | None], keys: list[Key],
                    existing: Mapping[Key, ActivityRow]) -> None:
    for key in keys:
        if key not in versions:
            continue
        want = versions[key]
        row = existing.get(key)
        live = row is not None and row.state != "cancelled"
        if want is None and live:
            raise AlreadyExists(f"'{key[1]}' exists already (version {row.version if row else 0})"
                                ": replace it with its version as a precondition")
        if want is not None and not live:
            raise NotFound(f"no '{key[1]}' of party '{key[0]}'")
        if want is not None and row is not None and row.version != want:
            raise StaleVersion(f"'{key[1]}' is at version {row.version}, not {want}: read it "
                               "again, then replace it")


def _keys(vols: VolumeSet) -> zip[Key]:
    """Each volume's (party, activity) key."""
    return zip(vols.party.tolist(), vols.activity.tolist(), strict=True)


def _group_index(vols: VolumeSet) -> tuple[list[Key], np.ndarray, np.ndarray]:
    """The distinct (party, activity) keys in order of appearance, each volume's key
    number, and each key's first volume."""
    seen: dict[Key, int] = {}
    code = np.fromiter((seen.setdefault(k, len(seen)) for k in _keys(vols)), dtype=np.intp,
                       count=len(vols))
    first = np.full(len(seen), len(vols), dtype=np.intp)
    np.minimum.at(first, code, np.arange(len(vols)))
    return list(seen), code, first


class Deconfliction:
    """The detection use cases over one store."""

    def __init__(self, store: Store, clock: Callable[[], str] = utc_now,
                 parallel: Parallel = map, bus: Bus | None = None):
        self.store = store
        self.clock = clock
        self.parallel = parallel  # a ``map`` for detection's independent pieces
        self.bus = bus  # told after a commit that wrote events

    def minima(self) -> Minima:
        return self.store.get_minima()

    def set_minima(self, minima: Minima, actor: str = "admin") -> None:
        with transaction(self.store, self.clock, actor, self.bus) as j:
            old = self.store.get_minima()
            self.store.set_minima(minima)
            j.audit("minima.replaced", "minima", minima.to_json(), before=old.to_json(),
                    after=minima.to_json())

    def preview(self, acts: VolumeSet, minima: Minima | None = None) -> list[dict[str, Any]]:
        """What these activity volumes would conflict with now, storing nothing."""
        st = self.store
        minima = minima or st.get_minima()
        stored, i, j = st.candidates(acts, minima.widest, zone=False)
        if len(i) == 0:
            return []
        found = evaluate_conflicts(acts, i, stored.volumes, j, minima)
        sv = stored.volumes
        return [{"volume": acts.ids[a], "party": sv.party[b], "activity": sv.activity[b],
                 "other": sv.ids[b], "horizontal_m": float(h), "vertical_m": float(v),
                 "time_s": float(t)}
                for a, b, h, v, t in zip(found.a, found.b, found.h, found.v, found.t,
                                         strict=True)]

    def submit(self, scenario: Scenario, *, override: bool = False,
               progress: Callable[[str], None] | None = None,
               versions: Mapping[Key, int | None] | None = None,
               details: Mapping[Key, tuple[str | None, str | None]] | None = None,
               actor: str = "local") -> SubmitResult:
        """Store the scenario's activities and zones with the conflicts they cause.

        ``versions`` are preconditions checked inside the transaction, per (party,
        activity or zone id): the version it must have now, or None for "must not
        exist" (a cancelled one may be created again). ``details`` sets (notes,
        contact). ``actor`` is who the audit log names.
        """
        return self._submit(scenario, override=override, progress=progress,
                            versions=versions, details=details, actor=actor)[0]

    def submit_each(self, items: Sequence[Submission]) -> list[SubmitResult | DetenteError]:
        """Each submission's result (or the error that refused it), as if submitted
        one after another in this order, each run of them that may go together in one
        transaction.

        A conflict between two of them is the later one's, as it would be in turn. A
        run holds consecutive submissions with distinct activity keys, no zones and one
        ``override``; if its combined transaction fails (one of them is refused, say),
        it changed nothing and each is submitted on its own, so only the faulty one
        fails.
        """
        out: list[SubmitResult | DetenteError] = []
        run: list[Submission] = []
        keys: set[Key] = set()
        for it in items:
            mine = set(_keys(it.scenario.activities))
            if run and (it.override != run[0].override or keys & mine
                        or len(it.scenario.zones) or len(run[0].scenario.zones)):
                out += self._run(run)
                run, keys = [], set()
            run.append(it)
            keys |= mine
        return out + (self._run(run) if run else [])

    def _run(self, run: Sequence[Submission]) -> list[SubmitResult | DetenteError]:
        """Submissions that may go together: in one transaction, else one by one."""
        if len(run) > 1:
            split = {k: n for n, it in enumerate(run) for k in _keys(it.scenario.activities)}
            actors = {k: run[n].actor for k, n in split.items()}
            merged = Scenario(VolumeSet.concat([it.scenario.activities for it in run]),
                              VolumeSet.empty(), np.empty(0, np.intp), np.empty(0, np.intp))
            versions = {k: v for it in run for k, v in (it.versions or {}).items()}
            details = {k: v for it in run for k, v in (it.details or {}).items()}
            try:
                return list(self._submit(merged, override=run[0].override,
                                         versions=versions, details=details, actor=SYSTEM,
                                         actors=actors, split=split, parts=len(run)))
            except DetenteError:
                pass  # nothing was stored: each on its own, below
        out: list[SubmitResult | DetenteError] = []
        for it in run:
            try:
                out.append(self.submit(it.scenario, override=it.override,
                                       versions=it.versions, details=it.details,
                                       actor=it.actor))
            except DetenteError as exc:
                out.append(exc)
        return out

    # Collections during a large import walked every object alive for nothing: 2.3 s of
    # a 300,000-volume import's 13.4 s.
    @gc_paused
    def _submit(self, scenario: Scenario, *, override: bool,
                versions: Mapping[Key, int | None] | None,
                details: Mapping[Key, tuple[str | None, str | None]] | None, actor: str,
                progress: Callable[[str], None] | None = None,
                actors: Mapping[Key, str] | None = None, split: Mapping[Key, int] | None = None,
                parts: int = 1) -> list[SubmitResult]:
        """The submission; with ``split`` (each activity's part) and ``parts``, one
        result per part, and ``actors`` naming who made each activity's changes."""
        st = self.store
        acts, zones = scenario.activities, scenario.zones
        results = [SubmitResult() for _ in range(parts)]

        def part(*keys: Key) -> SubmitResult:
            """The result a change goes to: the latest part it concerns."""
            if split is None:
                return results[0]
            return results[max(split[k] for k in keys if k in split)]

        def actor_of(c: ConflictRow) -> str | None:
            if actors is None:
                return None
            sides = [k for k in ((c.party_a, c.activity_a), (c.party_b, c.activity_b))
                     if k in actors]
            return actors[max(sides, key=lambda k: split[k] if split else 0)]

        say = progress or (lambda _msg: None)
        with transaction(st, self.clock, actor, self.bus) as journal:
            now = journal.now
            minima = st.get_minima()
            act_owner = np.zeros(len(acts), dtype=np.int64)
            zone_owner = np.zeros(len(zones), dtype=np.int64)
            say("storing")
            owners_of: list[dict[tuple[str, str], int]] = []
            moved: set[int] = set()  # owners whose volumes are not what they were
            # Activities stored before: only they can have conflicts to resolve (a new
            # one's only conflicts are those this submission finds).
            had: list[int] = []
            for vols, owner_col, is_zone in ((acts, act_owner, False), (zones, zone_owner, True)):
                keys, code, first = _group_index(vols)
                existing = st.find_owners(keys, zone=is_zone)
                if versions:
                    _check_versions(versions, keys, existing)
                fresh = [k for k in keys if k not in existing]
                described = dict(zip(keys, zip(vols.kind[first].tolist(),
                                               vols.restriction[first].tolist(),
                                               vols.applies_to[first].tolist(), strict=True),
                                     strict=True))
                new_ids = st.create_owners([(*k, *described[k]) for k in fresh], zone=is_zone,
                                           now=now)
                st.replace_owners([(existing[k].id, *described[k]) for k in keys
                                   if k in existing], zone=is_zone, now=now)
                if not is_zone:
                    had = [existing[k].id for k in keys if k in existing]
                ids = dict(zip(fresh, new_ids, strict=True))
                owner = {k: existing[k].id if k in existing else ids[k] for k in keys}
                owner_col[:] = np.fromiter((owner[k] for k in keys), dtype=np.int64,
                                           count=len(keys))[code]
                owners_of.append(owner)
                for k in keys:
                    mine = part(k)
                    named = mine.zones if is_zone else (
                        mine.replaced if k in existing else mine.created)
                    named.append(k[1])
                moved.update(owner[k] for k in _audit_owners(journal, vols, code, keys,
                                                             existing, is_zone, actors))
                if split is not None:  # (one read for all their answers)
                    for k, row in st.find_owners(keys, zone=is_zone).items():
                        part(k).owners[k] = row

            say("detecting")
            widest = minima.widest
            no_widen = Separation(0.0, 0.0, 0.0)
            # Stored volumes near the new ones (before those are written), then
            # detection in memory.
            stored = self._near(acts, widest, zone=False)
            stored_z = self._near(acts, no_widen, zone=True)
            stored_a = self._near(zones, no_widen, zone=False)
            conflicts, violations = self._detect(acts, act_owner, zones, zone_owner, stored,
                                                 stored_z, stored_a, minima, override)
            refused = [x for x in violations
                       if x["restriction"] == "prohibited" and not x["overridden"]]
            if refused:
                entries = sorted({f"{x['zone']} (volume {x['volume']!r} enters zone "
                                  f"volume {x['zone_volume']!r})" for x in refused})
                names = ", ".join(entries[:10]) + (f" and {len(entries) - 10:,} more"
                                                   if len(entries) > 10 else "")
                raise Refused(f"refused: the submission enters prohibited zone(s) {names}; "
                              "nothing was stored. Use --override to proceed anyway (the "
                              "override is recorded against the zone).")

            say("storing")
            if details:
                for owner in owners_of:
                    for k, owner_id in owner.items():
                        if k in details:
                            st.set_details(owner_id, *details[k])
            st.insert_volumes(act_owner, acts, zone=False)
            st.insert_volumes(zone_owner, zones, zone=True)
            policy, now_ns = read_policy(st), parse_instant(now)
            upserts = [ConflictUpsert(oa, ob, info["pairs"], info["starts"], info["ends"],
                                      policy.deadline(now_ns, info["starts"]),
                                      oa in moved or ob in moved)
                       for (oa, ob), info in conflicts.items()]
            changes = st.upsert_conflicts(upserts, now)
            opened: dict[int, ConflictRow] = {}
            for info, u, (cid, change) in zip(conflicts.values(), upserts, changes,
                                              strict=True):
                if change == "opened":  # what was just written: its row needs no reading
                    opened[cid] = ConflictRow(
                        cid, info["activity_a"], info["party_a"], info["activity_b"],
                        info["party_b"], "open", now, now, info["pairs"], u.owner_a,
                        u.owner_b, u.starts, u.ends, u.deadline)
                info["id"] = cid
                del info["starts"], info["ends"]
                mine = part((info["party_a"], info["activity_a"]),
                            (info["party_b"], info["activity_b"]))
                mine.conflicts.append(info)
            resolved = st.resolve_conflicts(had, {cid for cid, _ in changes}, now)
            rows = record_changes(st, journal,
                                  [(cid, ch) for cid, ch in changes if ch is not None],
                                  resolved, actor_of, known=opened)
            for cid in resolved:
                c = rows[cid]
                part((c.party_a, c.activity_a), (c.party_b, c.activity_b)).resolved.append(cid)
            for r in results:
                r.rows = rows
            st.record_violations(violations, now)
            _announce_violations(journal, violations, actors)
            for x in violations:
                part((x["party"], x["activity"]), (x["zone_party"], x["zone"])).violations.append(
                    {k: x[k] for k in ("activity", "party", "volume", "zone", "zone_party",
                                       "zone_volume", "restriction", "overridden")})
        return results

    # -- helpers -------------------------------------------------------------
    def _detect(self, acts: VolumeSet, act_owner: np.ndarray, zones: VolumeSet,
                zone_owner: np.ndarray, stored: StoredVolumes, stored_z: StoredVolumes,
                stored_a: StoredVolumes, minima: Minima, override: bool
                ) -> tuple[dict[tuple[int, int], Any], list[dict[str, Any]]]:
        """Conflicts and red-line entries of a submission, in memory (no store access)."""
        widest = minima.widest
        par = self.parallel
        # New activity volumes against stored ones and against each other.
        i, j = candidates_between(acts, stored.volumes, widest, parallel=par)
        found_stored = evaluate_conflicts(acts, i, stored.volumes, j, minima, parallel=par)
        i, j = candidates_within(acts, widest, parallel=par)
        found_new = evaluate_conflicts(acts, i, acts, j, minima, parallel=par)
        conflicts = self._conflict_groups(acts, act_owner, stored, found_stored, found_new)

        # Red lines: new activities against stored and new zones; new zones against
        # stored activities.
        no_widen = Separation(0.0, 0.0, 0.0)
        violations: list[dict[str, Any]] = []
        all_z = VolumeSet.concat([stored_z.volumes, zones])
        all_z_owner = np.concatenate([stored_z.owner_id, zone_owner])
        zi, zj = candidates_between(acts, all_z, no_widen, parallel=par)
        v = evaluate_violations(acts, zi, all_z, zj, parallel=par)
        for a, z in zip(v.volume, v.zone, strict=True):
            violations.append(self._violation(acts, a, act_owner[a], all_z, z,
                                              all_z_owner[z], override))
        if len(zones):
            ai, zk = candidates_between(stored_a.volumes, zones, no_widen, parallel=par)
            v2 = evaluate_violations(stored_a.volumes, ai, zones, zk, parallel=par)
            for a, z in zip(v2.volume, v2.zone, strict=True):
                violations.append(self._violation(stored_a.volumes, a, stored_a.owner_id[a],
                                                  zones, z, zone_owner[z], True))
        return conflicts, violations

    def _near(self, query: VolumeSet, widen: Separation, *, zone: bool) -> StoredVolumes:
        """Stored live volumes near the query (all of them when the query is large)."""
        st = self.store
        if len(query) == 0:
            return StoredVolumes(VolumeSet.empty(), np.empty(0, np.int64), np.empty(0, np.int64))
        # (a small query never counts the store: that count scans every live volume)
        if len(query) >= 1_000 and len(query) >= st.live_count(zone=zone) * BULK_RATIO:
            return st.live_volumes(zone=zone)
        stored, _, _ = st.candidates(query, widen, zone=zone)
        return stored

    @staticmethod
    def _conflict_groups(acts: VolumeSet, act_owner: np.ndarray, stored: StoredVolumes,
                         with_stored: Pairs, within: Pairs) -> dict[tuple[int, int], Any]:
        groups: dict[tuple[int, int], dict[str, Any]] = {}

        def add(oa: int, pa: str, ea: str, fa: Any, ob: int, pb: str, eb: str, fb: Any,
                h: float, v: float, t: float, t0: int, t1: int) -> None:
            if oa > ob:
                oa, pa, ea, fa, ob, pb, eb, fb = ob, pb, eb, fb, oa, pa, ea, fa
            g = groups.setdefault((oa, ob), {"activity_a": ea, "party_a": pa,
                                             "activity_b": eb, "party_b": pb, "pairs": [],
                                             "starts": t0, "ends": t1})
            g["pairs"].append({"a": fa, "b": fb, "horizontal_m": round(float(h), 3),
                               "vertical_m": float(v), "time_s": float(t)})
            g["starts"] = min(g["starts"], t0)
            g["ends"] = max(g["ends"], t1)

        sv = stored.volumes
        for k in range(len(with_stored)):
            a, b = with_stored.a[k], with_stored.b[k]
            add(int(act_owner[a]), acts.party[a], acts.activity[a], acts.ids[a],
                int(stored.owner_id[b]), sv.party[b], sv.activity[b], sv.ids[b],
                with_stored.h[k], with_stored.v[k], with_stored.t[k],
                int(min(acts.t0[a], sv.t0[b])), int(max(acts.t1[a], sv.t1[b])))
        for k in range(len(within)):
            a, b = within.a[k], within.b[k]
            add(int(act_owner[a]), acts.party[a], acts.activity[a], acts.ids[a],
                int(act_owner[b]), acts.party[b], acts.activity[b], acts.ids[b],
                within.h[k], within.v[k], within.t[k],
                int(min(acts.t0[a], acts.t0[b])), int(max(acts.t1[a], acts.t1[b])))
        for g in groups.values():  # one order whatever way the pairs were found, so a
            # conflict found again is "changed" only if its pairs are
            g["pairs"].sort(key=lambda p: (str(p["a"]), str(p["b"])))
        return groups

    @staticmethod
    def _violation(acts: VolumeSet, a: int, a_owner: int, zones: VolumeSet, z: int,
                   z_owner: int, override: bool) -> dict[str, Any]:
        return {"activity_id": int(a_owner), "zone_id": int(z_owner),
                "activity": acts.activity[a], "party": acts.party[a], "volume": acts.ids[a],
                "zone": zones.activity[z], "zone_party": zones.party[z],
                "zone_volume": zones.ids[z], "restriction": zones.restriction[z],
                "overridden": bool(override) and zones.restriction[z] == "prohibited"}

    def cancel(self, party: str, ext_id: str, actor: str = "local") -> list[int]:
        """Cancel an activity: it no longer conflicts; its open conflicts are resolved."""
        st = self.store
        with transaction(st, self.clock, actor, self.bus) as j:
            owner = st.find_owner(party, ext_id, zone=False)
            if owner is None or owner.state == "cancelled":
                raise NotFound(f"no activity '{ext_id}' of party '{party}'")
            st.set_state(owner.id, "cancelled", j.now)
            st.clear_violations(owner.id, zone=False)
            _audit_state(j, owner, "cancelled")
            resolved = st.resolve_conflicts([owner.id], set(), j.now)
            record_changes(st, j, [], resolved)
            return resolved

    def set_state(self, party: str, ext_id: str, state: str, actor: str = "local") -> int:
        """Move an activity along planned -> active -> ended; returns its new version.
        An ended activity no longer takes part in detection."""
        st = self.store
        with transaction(st, self.clock, actor, self.bus) as j:
            owner = st.find_owner(party, ext_id, zone=False)
            if owner is None or owner.state == "cancelled":
                raise NotFound(f"no activity '{ext_id}' of party '{party}'")
            allowed = {"planned": ("active", "ended"), "active": ("ended",)}
            if state != owner.state and state not in allowed.get(owner.state, ()):
                raise InputError(f"an activity goes planned -> active -> ended; "
                                 f"'{ext_id}' is {owner.state}", field="state")
            if state != owner.state:
                st.set_state(owner.id, state, j.now)
                _audit_state(j, owner, state)
                return owner.version + 1
            return owner.version

    def delete_zone(self, party: str, ext_id: str, actor: str = "local") -> None:
        st = self.store
        with transaction(st, self.clock, actor, self.bus) as j:
            owner = st.find_owner(party, ext_id, zone=True)
            if owner is None or owner.state == "cancelled":
                raise NotFound(f"no zone '{ext_id}' of party '{party}'")
            st.set_state(owner.id, "cancelled", j.now)
            st.clear_violations(owner.id, zone=True)
            _audit_state(j, owner, "cancelled")


def _subject(party: str, ext_id: str, zone: bool) -> str:
    """An activity's or a zone's name in the audit log."""
    return f"{'zone' if zone else 'activity'}/{party}/{ext_id}"


def _audit_state(journal: Journal, owner: ActivityRow, state: str) -> None:
    subject = _subject(owner.party, owner.ext_id, owner.is_zone)
    journal.audit(f"{'zone' if owner.is_zone else 'activity'}.{state}", subject,
                  {"from": owner.state, "to": state, "version": owner.version + 1},
                  before_digest=journal.last_after(subject),
                  after={"state": state, "version": owner.version + 1})


def _audit_owners(journal: Journal, vols: VolumeSet, code: np.ndarray, keys: list[Key],
                  existing: Mapping[Key, ActivityRow], zone: bool,
                  actors: Mapping[Key, str] | None) -> list[Key]:
    """An audit entry per activity (or zone) written, with a digest of its volumes
    (naming its own actor when ``actors`` says); returns those whose volumes changed
    (or are new)."""
    if not keys:
        return []
    hashes = [hashlib.sha256() for _ in keys]
    # Per volume: its id, WKB, radius, altitudes (float64) and times (int64), little-
    # endian; the numbers of all volumes are packed at once and sliced (one update per
    # volume hashes what four did before: the same bytes, the same digest).
    packed = np.empty(len(vols), dtype=[("f", "<f8", (3,)), ("t", "<i8", (2,))])
    packed["f"] = np.column_stack([vols.radius, vols.alt_lo, vols.alt_hi])
    packed["t"] = np.column_stack([vols.t0, vols.t1])
    raw = packed.tobytes()
    size = packed.dtype.itemsize
    for i, (c, fid, w) in enumerate(zip(code.tolist(), vols.ids, vols.wkb(), strict=True)):
        hashes[c].update(str(fid).encode() + w + raw[i * size:(i + 1) * size])
    counts = np.bincount(code, minlength=len(keys)).tolist()
    noun = "zone" if zone else "activity"
    moved = []
    for k, h, n in zip(keys, hashes, counts, strict=True):
        old = existing.get(k)
        subject = _subject(*k, zone)
        version = 1 if old is None else old.version + 1
        again = old is None or old.state == "cancelled"
        before = journal.last_after(subject) if old is not None else None
        # Moved: not the volumes it had (a state change in between is no move).
        if again or h.hexdigest() != journal.last_after(
                subject, (f"{noun}.created", f"{noun}.replaced")):
            moved.append(k)
        journal.audit(f"{noun}.{'created' if again else 'replaced'}", subject,
                      {"version": version, "volumes": n}, before_digest=before,
                      after_digest=h.hexdigest(), actor=actors.get(k) if actors else None)
    return moved


def _announce_violations(journal: Journal, violations: list[dict[str, Any]],
                         actors: Mapping[Key, str] | None) -> None:
    """Tell a zone's owner of each entry into it (and audit the overrides)."""
    for x in violations:
        if x["overridden"]:
            journal.audit("zone.override", _subject(x["zone_party"], x["zone"], True),
                          {"party": x["party"], "activity": x["activity"],
                           "volume": x["volume"], "zone_volume": x["zone_volume"]},
                          actor=actors.get((x["party"], x["activity"])) if actors else None)
        if x["zone_party"] == x["party"]:
            continue
        journal.event(x["zone_party"], "zone.override" if x["overridden"] else "zone.entered",
                      {"zone": x["zone"], "zone_volume": x["zone_volume"],
                       "party": x["party"], "restriction": x["restriction"],
                       "overridden": x["overridden"]})
