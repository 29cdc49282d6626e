"""MatchLog: one match's op log held in memory, its folded view, and the ops a write makes.

Both engines keep one per match: the embedded engine as its truth (rebuilt from disk),
the Redis engine as a cache that the shared stream keeps current. Building an op only
reads the log; an engine appends it (atomically, checking the head did not move) and
then applies it.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from ticker.errors import Conflict, Invalid, NotFound
from ticker.model import Op, check_event
from ticker.state import IN_PLAY, V11_KEYS, Tally, clock, tally
from ticker.wire import Message, dumps

# Minute written for a period-start event that comes without one.
_START_MINUTE = {"kickoff": 0, "second_half": 46, "extra_time": 91}


def iso_ms(now: float) -> str:
    return (
        datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


class StaleRev(Conflict):
    """An If-Match that names a rev the event has left: the body carries the event as it is."""

    def __init__(self, event: dict[str, Any], expected: int) -> None:
        who = event.get("edited_by") or event.get("author") or "someone"
        super().__init__(
            f"event {event['id']} is at rev {event['rev']} now (last changed by {who}), "
            f"not rev {expected}: review it and retry",
            "If-Match",
        )
        self.current = event

    def body(self) -> dict[str, Any]:
        body = super().body()
        body["error"]["current"] = self.current
        return body


class MatchLog:
    """The ops of one match in order, with live events, state and match metadata."""

    def __init__(self, match_id: str) -> None:
        self.id = match_id
        self.match: dict[str, Any] | None = None
        self.ops: list[Op] = []
        self.index: dict[str, int] = {}
        self.events: dict[str, dict[str, Any]] = {}
        self.tally = Tally()  # the fold of `events`, kept so an add can step it
        self.state: dict[str, Any] = self.tally.state()
        self.lineups: dict[str, Any] = {"home": None, "away": None}
        self._snapshots: dict[tuple[str, bool], Message] = {}

    @property
    def head(self) -> str:
        return self.ops[-1].seq if self.ops else ""

    def apply(self, op: Op) -> bool:
        """Append an op read from storage; an op at or before the head is ignored."""
        if self.ops and op.key <= self.ops[-1].key:
            return False
        data = op.data
        kind = data["op"]
        if kind == "match":
            self.match = data["match"]
        elif kind == "lineups":
            self.lineups = data["lineups"]
        elif kind in ("add", "update", "remove"):
            if kind != "remove" and "pinned" not in data["event"]:
                # An event of a v1 log: it reads as not pinned, in snapshots and ops alike.
                data = {**data, "event": {**data["event"], "pinned": False}}
            self._fold_in(data)
            if not data.get("state", {}).keys() >= V11_KEYS:
                # An op of a v1 log: it goes out again (resume, /ops) with the full state.
                data = {**data, "state": self.state}
            if data is not op.data:
                op = Op(op.seq, data)
        self.index[op.seq] = len(self.ops)
        self.ops.append(op)
        return True

    def _fold_in(self, data: dict[str, Any]) -> None:
        """Take an event op into the live events and the state, which is their fold."""
        if data["op"] == "remove":
            self.events.pop(data["id"], None)
            self.tally = tally(self.events.values())
        else:
            event = data["event"]
            appended = event["id"] not in self.events
            self.events[event["id"]] = event
            if appended:  # the newest live event: stepping equals folding again
                self.tally.step(event)
            else:  # a correction may change anything after it: fold again
                self.tally = tally(self.events.values())
        self.state = self.tally.state()

    def since(self, seq: str) -> list[Op] | None:
        """Ops after `seq`, or None when `seq` is not in this log (the client must reset)."""
        pos = self.index.get(seq)
        if pos is None:
            return None
        return self.ops[pos + 1 :]

    def snapshot(self, reset: bool = False) -> Message:
        """The snapshot message at the current head, encoded once per (head, reset)."""
        key = (self.head, reset)
        msg = self._snapshots.get(key)
        if msg is None:
            body: dict[str, Any] = {
                "op": "snapshot",
                "seq": self.head,
                "match": self.match,
                "state": self.state,
                "events": list(self.events.values()),
                "lineups": self.lineups,
            }
            if reset:
                body["reset"] = True
            msg = Message(self.head, "snapshot", dumps(body))
            # Older heads are never asked for again: keep only the current pair.
            self._snapshots = {k: v for k, v in self._snapshots.items() if k[0] == self.head}
            self._snapshots[key] = msg
        return msg

    def summary(self) -> dict[str, Any]:
        return {"match": self.match, "state": self.state, "seq": self.head}

    # Building ops (pure: reads the log, changes nothing)

    def next_seq(self, now: float) -> str:
        """A seq after the head: wall-clock milliseconds, counting on if the clock lags."""
        ms = int(now * 1000)
        if self.ops:
            last_ms, last_n = self.ops[-1].key
            if ms <= last_ms:
                return f"{last_ms}-{last_n + 1}"
        return f"{ms}-0"

    def _with(self, event: dict[str, Any], removed: str | None = None) -> dict[str, Any]:
        """The state after adding, correcting or removing one event (the log unchanged)."""
        if removed is None and event["id"] not in self.events:
            after = self.tally.copy()
            after.step(event)
            return after.state()
        events = dict(self.events)
        if removed is not None:
            del events[removed]
        else:
            events[event["id"]] = event
        return tally(events.values()).state()

    def build_add(self, fields: dict[str, Any], author: str, now: float | None = None) -> Op:
        now = time.time() if now is None else now
        seq = self.next_seq(now)
        if "minute" not in fields:
            if fields["type"] in _START_MINUTE:
                minute, added = _START_MINUTE[fields["type"]], 0
            else:
                minute, added = clock(self.events.values(), self.state, now)
            fields = {**fields, "minute": minute, "added": fields.get("added", added)}
        event: dict[str, Any] = {
            "id": seq,
            "rev": 1,
            "type": fields["type"],
            "minute": fields["minute"],
            "added": fields.get("added", 0),
        }
        event.update((k, v) for k, v in fields.items() if k not in event and v is not None)
        event.setdefault("pinned", False)  # stored, so every event carries it
        event["at"] = iso_ms(now)
        event["author"] = author
        check_event(event)
        return Op(seq, {"op": "add", "seq": seq, "event": event, "state": self._with(event)})

    def _live(self, event_id: str) -> dict[str, Any]:
        try:
            return self.events[event_id]
        except KeyError:
            raise NotFound(f"no live event {event_id} in match {self.id}", "event_id") from None

    def _checked(self, event_id: str, if_match: int | None) -> dict[str, Any]:
        """The live event, if it is still at the rev the client saw (checked here, in the
        builder, so the check and the append are one atomic step in both engines)."""
        event = self._live(event_id)
        if if_match is not None and event["rev"] != if_match:
            raise StaleRev(event, if_match)
        return event

    def build_update(
        self,
        event_id: str,
        fields: dict[str, Any],
        *,
        by: str | None = None,
        if_match: int | None = None,
        now: float | None = None,
    ) -> Op:
        now = time.time() if now is None else now
        old = self._checked(event_id, if_match)
        if not fields:
            raise Invalid("a correction must change at least one field")
        event = {**old, **fields, "rev": old["rev"] + 1}
        if by is not None:  # `author` stays the original poster; these say who made this rev
            event.update(edited_by=by, edited_at=iso_ms(now))
        event = {k: v for k, v in event.items() if v is not None}
        check_event(event)
        seq = self.next_seq(now)
        return Op(seq, {"op": "update", "seq": seq, "event": event, "state": self._with(event)})

    def build_remove(
        self,
        event_id: str,
        *,
        by: str | None = None,
        if_match: int | None = None,
        now: float | None = None,
    ) -> Op:
        now = time.time() if now is None else now
        self._checked(event_id, if_match)
        seq = self.next_seq(now)
        state = self._with({}, removed=event_id)
        data: dict[str, Any] = {"op": "remove", "seq": seq, "id": event_id}
        if by is not None:
            data.update(by=by, at=iso_ms(now))
        return Op(seq, {**data, "state": state})

    def build_match(
        self, fields: dict[str, Any], *, by: str | None = None, now: float | None = None
    ) -> Op:
        now = time.time() if now is None else now
        match = {**(self.match or {}), **fields}
        match = {k: v for k, v in match.items() if v is not None}
        seq = self.next_seq(now)
        data: dict[str, Any] = {"op": "match", "seq": seq, "match": match}
        if by is not None:
            data["by"] = by
        return Op(seq, data)

    def build_lineups(
        self, sides: dict[str, Any], *, by: str | None = None, now: float | None = None
    ) -> Op:
        """Both sides as they stand after setting `sides` (a side left out stays)."""
        now = time.time() if now is None else now
        seq = self.next_seq(now)
        data: dict[str, Any] = {"op": "lineups", "seq": seq, "lineups": {**self.lineups, **sides}}
        if by is not None:
            data["by"] = by
        return Op(seq, data)


def live_first(mlog: MatchLog) -> tuple[int, str, str]:
    """Sort key of match lists: in play, then upcoming by kick-off, then finished."""
    phase = mlog.state["phase"]
    rank = 0 if phase in IN_PLAY else 1 if phase == "pre_match" else 2
    return rank, (mlog.match or {}).get("kickoff") or "", mlog.id
