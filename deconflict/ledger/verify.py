"""The offline verifier of an export file. Shares nothing with the writer but the hash.

It imports only :func:`~deconflict.ledger.rfc9162.leaf_hash`,
:func:`~deconflict.ledger.rfc9162.node_hash` and
:func:`~deconflict.ledger.rfc9162.verify_consistency`; it parses the file, rebuilds the
signed message (see :mod:`deconflict.ledger.sth` for the layout), computes prefix roots
and builds consistency proofs (straight from the RFC 9162 §2.1.4.1 definition) on its own.

What it checks
--------------
* the header: format, version, public key, key id (and the key a party pinned, if given);
* every entry line: readable, and its ``index`` equal to its position;
* every tree head: well formed, names the log's key, Ed25519 signature valid; sizes and
  timestamps never decrease from one head to the next; no two heads of one size with
  different roots;
* every leaf hash, and the root at every validly signed head's size;
* a party's checkpoint (and any earlier checkpoints it kept): the root at its size, and
  an RFC 9162 consistency proof, computed from the entries, from the checkpoint to the
  largest signed size (the log as it is today);
* every party signature an entry carries (its ``signed`` member, see
  :mod:`deconflict.model.signature`): the key was registered by the same party in an earlier
  entry (``party_key_added``, its id the RFC 7638 thumbprint of the key) and not revoked
  since, the Ed25519 signature verifies over the recorded RFC 9421 signature base, and the
  base's ``content-digest`` (RFC 9530) is the digest of the recorded request body. So a
  party cannot deny a signed write, and the service cannot attribute one it did not get.

Where the first bad index is
----------------------------
An *anchor* is a size whose root is trusted: a validly signed head (for the log's own
history) or a party checkpoint (for that party's view of it). If the entries reproduce an
anchor's root, entries ``[0, size)`` are exactly those the anchor covers (SHA-256
collision resistance). Each failure therefore names a half-open range ``[index, end)``
that is guaranteed to contain the first bad index:

* ``index`` is the largest anchor size at or below the damage whose root the entries
  reproduce (0 if none): every entry before it is proven good;
* ``end`` is the first mismatching anchor's size (the damage is before it), or
  ``p + 1`` for an entry position ``p`` that is itself proven wrong (unreadable line,
  wrong ``index`` label, or missing because a signed head covers more entries than the
  export holds).

So ``index`` is exact (``end == index + 1``) when an anchor sits right before the first
bad entry: with a head signed after every append (or a party that kept every head it was
given), any altered, removed, reordered or inserted entry is named exactly; with heads
every N entries it is named to within those N. Damage after the last anchor cannot be
seen by anyone: such entries are reported as ``unsigned``, not as verified.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from deconflict.ledger.rfc9162 import ProofError, leaf_hash, node_hash, verify_consistency

__all__ = ["Checkpoint", "Failure", "Problem", "Report", "verify_export", "verify_lines"]

_FORMAT = "deconflict-ledger-export"
_VERSION = 1
_STH_CONTEXT = b"deconflict/sth/v1\x00"
_EMPTY_ROOT = hashlib.sha256(b"").digest()


class Checkpoint(Protocol):
    """What a party saved: a tree size and its root (a ``TreeHead`` will do)."""

    @property
    def size(self) -> int: ...

    @property
    def root(self) -> bytes: ...


class Problem(StrEnum):
    """What a failure is about."""

    FORMAT = "format"  # a line is not what the export format says
    INDEX = "index"  # an entry line's index is not its position
    KEY = "key"  # the header's key is not the one the party pinned
    SIGNATURE = "signature"  # a tree head's signature does not verify, or names another key
    ORDER = "order"  # a tree head's size or timestamp is below the previous head's
    EQUIVOCATION = "equivocation"  # two validly signed heads of one size with different roots
    ROOT = "root"  # the entries do not give a signed head's root
    TRUNCATED = "truncated"  # a signed head covers more entries than the export holds
    CHECKPOINT = "checkpoint"  # a party's checkpoint is not a prefix of the log in the export
    PARTY_SIGNATURE = "party_signature"  # a signed entry's party signature does not check out


@dataclass(frozen=True, slots=True)
class Failure:
    """One failed check. When ``index`` is set, the first bad entry is in ``[index, end)``."""

    problem: Problem
    detail: str
    index: int | None = None
    end: int | None = None
    line: int | None = None

    @property
    def exact(self) -> bool:
        """True when the range is one entry: ``index`` is the first bad one."""
        return self.index is not None and self.end == self.index + 1


@dataclass(frozen=True, slots=True)
class Report:
    """What was checked, and what failed."""

    entries: int = 0
    tree_heads: int = 0
    signatures_valid: int = 0
    roots_matched: int = 0
    verified_size: int = 0
    """Largest signed size whose root the entries reproduce: entries below it are proven."""
    unsigned: int = 0
    """Entries after the largest validly signed size: no head vouches for them yet."""
    checkpoints_checked: int = 0
    party_signatures_valid: int = 0
    """Entries carrying a party's signature that checks out (see the module)."""
    consistency: tuple[int, int] | None = None
    """``(checkpoint size, size)`` of the consistency proof checked, if any."""
    failures: tuple[Failure, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def first_failure(self) -> Failure | None:
        """The failure naming the earliest entry; else the first failure found."""
        located = [f for f in self.failures if f.index is not None]
        if located:
            return min(located, key=lambda f: (f.index, f.end))
        return self.failures[0] if self.failures else None

    def summary(self) -> str:
        lines = [
            f"entries: {self.entries} (leaf hashes recomputed)",
            f"tree heads: {self.tree_heads}, signatures valid: {self.signatures_valid}",
            f"signed roots reproduced: {self.roots_matched}, proven up to size {self.verified_size}",
            f"entries not yet covered by a signed head: {self.unsigned}",
        ]
        if self.party_signatures_valid:
            lines.append(f"party signatures valid: {self.party_signatures_valid}")
        if self.checkpoints_checked:
            lines.append(f"checkpoints checked: {self.checkpoints_checked}")
        if self.consistency is not None:
            lines.append(f"consistency proof from size {self.consistency[0]} to {self.consistency[1]}")
        first = self.first_failure
        if first is None:
            lines.append("OK")
        else:
            where = "" if first.index is None else f" at index {first.index}"
            if first.index is not None and not first.exact:
                where += f" (first bad entry in [{first.index}, {first.end}))"
            line = "" if first.line is None else f" (line {first.line})"
            lines.append(f"FAILED: {first.problem}{where}{line}: {first.detail}")
            lines.extend(f"  also: {f.problem}: {f.detail}" for f in self.failures if f is not first)
        return "\n".join(lines)


def verify_export(
    path: Path,
    *,
    checkpoint: Checkpoint | None = None,
    earlier_checkpoints: Sequence[Checkpoint] = (),
    public_key: bytes | None = None,
) -> Report:
    """Verify the export file at ``path``; see the module docstring for what and how.

    ``checkpoint`` is the party's latest saved (size, root); ``earlier_checkpoints`` any
    older ones it kept, which narrow where a fork began. ``public_key`` (raw 32 bytes)
    pins the log's key; without it the header's key is taken on trust, and only a
    checkpoint can tell a wholly re-signed history from the real one.
    """
    with path.open("rb") as f:
        return verify_lines(
            f, checkpoint=checkpoint, earlier_checkpoints=earlier_checkpoints, public_key=public_key
        )


# --- parsing ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Head:
    line: int
    size: int
    root: bytes
    timestamp_ms: int


class _Bad(Exception):
    pass


def _json_object(raw: bytes) -> dict[str, object]:
    try:
        value = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _Bad(f"not a UTF-8 JSON line ({exc.__class__.__name__})") from None
    if not isinstance(value, dict):
        raise _Bad("not a JSON object")
    return value


def _b64(value: object, name: str) -> bytes:
    if not isinstance(value, str):
        raise _Bad(f"{name} is not a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise _Bad(f"{name} is not a base64 string") from None


def _uint(value: object, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**64:
        raise _Bad(f"{name} is not an unsigned 64-bit integer")
    return value


def _key_id(public_key: bytes) -> str:
    return hashlib.sha256(public_key).hexdigest()[:16]


def _parse_head(obj: dict[str, object]) -> tuple[int, bytes, int, str, bytes]:
    if set(obj) != {"sth"} or not isinstance(obj["sth"], dict):
        raise _Bad('a tree-head line is {"sth": {...}}')
    sth = obj["sth"]
    size = _uint(sth.get("size"), "sth.size")
    ts = _uint(sth.get("timestamp_ms"), "sth.timestamp_ms")
    root_hex = sth.get("root")
    try:
        root = bytes.fromhex(root_hex) if isinstance(root_hex, str) else b""
    except ValueError:
        root = b""
    if len(root) != 32:
        raise _Bad("sth.root is not 64 hex digits")
    kid = sth.get("key_id")
    if not isinstance(kid, str):
        raise _Bad("sth.key_id is not a string")
    signature = _b64(sth.get("signature"), "sth.signature")
    return size, root, ts, kid, signature


def _signature_ok(public_key: bytes, head: tuple[int, bytes, int], signature: bytes) -> bool:
    size, root, ts = head
    message = _STH_CONTEXT + hashlib.sha256(public_key).digest() + struct.pack(">QQ", ts, size) + root
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


# --- roots and proofs, written from RFC 9162 §2.1 ----------------------------------------


def _prefix_roots(leaves: Sequence[bytes | None], sizes: Iterable[int]) -> dict[int, bytes]:
    """MTH of ``leaves[:s]`` for each wanted ``s`` reachable before an unreadable leaf."""
    wanted = set(sizes)
    out: dict[int, bytes] = {0: _EMPTY_ROOT} if 0 in wanted else {}
    last = max(wanted, default=0)
    stack: list[tuple[int, bytes]] = []  # (height, hash) of perfect subtrees, largest first
    for i, leaf in enumerate(leaves[:last]):
        if leaf is None:
            break
        height, h = 0, leaf
        while stack and stack[-1][0] == height:
            h = node_hash(stack.pop()[1], h)
            height += 1
        stack.append((height, h))
        if i + 1 in wanted:
            acc = stack[-1][1]
            for _, left in reversed(stack[:-1]):
                acc = node_hash(left, acc)
            out[i + 1] = acc
    return out


def _split(n: int) -> int:
    k = 1
    while k << 1 < n:
        k <<= 1
    return k


def _mth(leaves: Sequence[bytes], lo: int, hi: int) -> bytes:
    n = hi - lo
    if n == 0:
        return _EMPTY_ROOT
    if n == 1:
        return leaves[lo]
    k = _split(n)
    return node_hash(_mth(leaves, lo, lo + k), _mth(leaves, lo + k, hi))


def _subproof(leaves: Sequence[bytes], m: int, lo: int, hi: int, whole: bool) -> list[bytes]:
    n = hi - lo
    if m == n:
        return [] if whole else [_mth(leaves, lo, hi)]
    k = _split(n)
    if m <= k:
        return [*_subproof(leaves, m, lo, lo + k, whole), _mth(leaves, lo + k, hi)]
    return [*_subproof(leaves, m - k, lo + k, hi, False), _mth(leaves, lo, lo + k)]


def _consistency(leaves: Sequence[bytes], size1: int, size2: int) -> list[bytes]:
    if size1 == 0 or size1 == size2:
        return []
    return _subproof(leaves, size1, 0, size2, True)


# --- the checks --------------------------------------------------------------------------


def _below(sizes: Iterable[int], limit: int) -> int:
    """Largest size <= limit among ``sizes``, else 0."""
    return max((s for s in sizes if s <= limit), default=0)


def _check_head(
    line_no: int,
    obj: dict[str, object],
    error: str,
    key: bytes,
    kid: str,
    previous: _Head | None,
    failures: list[Failure],
) -> _Head | None:
    """A validly signed head, or None after recording why not."""
    try:
        if error:
            raise _Bad(error)
        size, root, ts, head_kid, sig = _parse_head(obj)
    except _Bad as exc:
        failures.append(Failure(Problem.FORMAT, f"tree head: {exc}", line=line_no))
        return None
    if head_kid != kid:
        failures.append(
            Failure(Problem.SIGNATURE, f"tree head names key {head_kid}, not {kid}", line=line_no)
        )
        return None
    if not _signature_ok(key, (size, root, ts), sig):
        detail = f"signature of tree head (size {size}, timestamp_ms {ts}) does not verify"
        failures.append(Failure(Problem.SIGNATURE, detail, line=line_no))
        return None
    if previous is not None and (size < previous.size or ts < previous.timestamp_ms):
        detail = (
            f"tree head (size {size}, timestamp_ms {ts}) goes back from line {previous.line} "
            f"(size {previous.size}, timestamp_ms {previous.timestamp_ms})"
        )
        failures.append(Failure(Problem.ORDER, detail, line=line_no))
    return _Head(line_no, size, root, ts)


def _thumbprint(public_key: bytes) -> str:
    """RFC 7638 thumbprint of an Ed25519 key as an RFC 8037 OKP JWK."""
    x = base64.urlsafe_b64encode(public_key).rstrip(b"=").decode("ascii")
    members = '{"crv":"Ed25519","kty":"OKP","x":"' + x + '"}'
    return base64.urlsafe_b64encode(hashlib.sha256(members.encode("ascii")).digest()).rstrip(b"=").decode()


_DIGESTS = {"sha-256": hashlib.sha256, "sha-512": hashlib.sha512}


def _digest_ok(base: str, content: bytes) -> bool:
    """The base's RFC 9530 content-digest (every sha-256/sha-512 member) is `content`'s."""
    lines = [ln for ln in base.split("\n") if ln.startswith('"content-digest": ')]
    if not lines:
        return not content
    members = [m.strip() for m in lines[0].split(": ", 1)[1].split(",")]
    checked = 0
    for m in members:
        alg, _, value = m.partition("=")
        if alg in _DIGESTS:
            if not (value.startswith(":") and value.endswith(":")):
                return False
            try:
                if base64.b64decode(value[1:-1], validate=True) != _DIGESTS[alg](content).digest():
                    return False
            except binascii.Error:
                return False
            checked += 1
    return checked > 0


class _PartyKeys:
    """Keys registered in the log so far, and the check of each signed entry."""

    def __init__(self) -> None:
        self.keys: dict[str, tuple[str, bytes]] = {}
        self.revoked: set[str] = set()
        self.valid = 0

    def check(self, data: bytes) -> str:
        """'' if the entry is fine (or carries no signature), else what is wrong."""
        try:
            entry = json.loads(data.decode("utf-8"))
            body = entry["body"]
            kind = entry["kind"]
        except (UnicodeDecodeError, ValueError, KeyError, TypeError):
            return ""  # not this check's business: the leaf hash is what the tree vouches for
        if not isinstance(body, dict):
            return ""
        # who wrote it: a filing's owner, a key's party, a message's sender, a reply's author,
        # a delivery's recipient
        signer = next((body[k] for k in ("owner", "party", "sender", "by", "recipient") if k in body), None)
        signed = body.get("signed")
        if signed is not None:
            problem = self._signature(signed, signer)
            if problem:
                return problem
            self.valid += 1
        if kind == "party_key_added":
            try:
                raw = base64.b64decode(body["public_key"], validate=True)
            except (KeyError, TypeError, binascii.Error):
                return "party_key_added: public_key is not base64"
            if len(raw) != 32 or body.get("key_id") != _thumbprint(raw):
                return "party_key_added: key_id is not the RFC 7638 thumbprint of public_key"
            self.keys[str(body["key_id"])] = (str(body.get("party")), raw)
        elif kind == "party_key_revoked":
            self.revoked.add(str(body.get("key_id")))
        return ""

    def _signature(self, signed: object, signer: object) -> str:
        if not isinstance(signed, dict):
            return "signed: must be an object"
        key_id, base, content = signed.get("key_id"), signed.get("base"), signed.get("content")
        if not (isinstance(key_id, str) and isinstance(base, str) and isinstance(content, str)):
            return "signed: key_id, base and content must be strings"
        if key_id not in self.keys:
            return f"signed by key {key_id!r}, which no earlier entry registered"
        party, public_key = self.keys[key_id]
        if party != signer:
            return f"signed by a key of {party!r} for a write of {signer!r}"
        if key_id in self.revoked:
            return f"signed by key {key_id!r} after it was revoked"
        try:
            signature = base64.b64decode(str(signed.get("signature")), validate=True)
            Ed25519PublicKey.from_public_bytes(public_key).verify(signature, base.encode("ascii"))
        except (binascii.Error, UnicodeEncodeError, ValueError, InvalidSignature):
            return f"the signature by key {key_id!r} does not verify over the recorded base"
        if not _digest_ok(base, content.encode("utf-8")):
            return "the signed content-digest is not the digest of the recorded content"
        return ""


def _check_entry(
    line_no: int,
    obj: dict[str, object],
    error: str,
    leaves: list[bytes | None],
    bad_positions: list[tuple[int, Problem, str, int]],
    party_keys: _PartyKeys,
    signature_failures: list[Failure],
) -> None:
    """Append the entry's leaf hash (None if unreadable), recording a bad line or label."""
    position = len(leaves)
    try:
        if error:
            raise _Bad(error)
        if set(obj) != {"index", "entry"}:
            raise _Bad("an entry line has exactly the fields index and entry")
        data = _b64(obj["entry"], "entry")
    except _Bad as exc:
        leaves.append(None)
        bad_positions.append((position, Problem.FORMAT, f"entry {position}: {exc}", line_no))
        return
    leaves.append(leaf_hash(data))
    problem = party_keys.check(data)
    if problem:
        signature_failures.append(
            Failure(Problem.PARTY_SIGNATURE, f"entry {position}: {problem}", position, position + 1, line_no)
        )
    label = obj["index"]
    if label != position or isinstance(label, bool):
        detail = f"line holds index {label!r} at position {position}"
        bad_positions.append((position, Problem.INDEX, detail, line_no))


def verify_lines(
    lines: Iterable[bytes],
    *,
    checkpoint: Checkpoint | None = None,
    earlier_checkpoints: Sequence[Checkpoint] = (),
    public_key: bytes | None = None,
) -> Report:
    """:func:`verify_export` over the lines of an export (e.g. an open binary file)."""
    failures: list[Failure] = []
    it = iter(enumerate(lines, start=1))

    # header
    first = next(it, None)
    if first is None:
        return Report(failures=(Failure(Problem.FORMAT, "the file is empty", line=1),))
    try:
        header = _json_object(first[1])
        if header.get("format") != _FORMAT or header.get("version") != _VERSION:
            raise _Bad(f"the header must name format {_FORMAT!r} version {_VERSION}")
        header_key = _b64(header.get("public_key"), "public_key")
        if len(header_key) != 32:
            raise _Bad("public_key is not 32 bytes")
    except _Bad as exc:
        return Report(failures=(Failure(Problem.FORMAT, f"header: {exc}", line=1),))
    if header.get("key_id") != _key_id(header_key):
        failures.append(Failure(Problem.FORMAT, "header: key_id is not the id of public_key", line=1))
    key = header_key
    if public_key is not None and public_key != header_key:
        failures.append(Failure(Problem.KEY, "the export's public key is not the pinned key", line=1))
        key = public_key
    kid = _key_id(key)

    # entries and heads
    leaves: list[bytes | None] = []
    bad_positions: list[tuple[int, Problem, str, int]] = []  # first of each problem only
    heads: list[_Head] = []
    party_keys = _PartyKeys()
    signature_failures: list[Failure] = []
    n_heads = 0
    for line_no, raw in it:
        try:
            obj: dict[str, object] = _json_object(raw)
            error = ""
        except _Bad as exc:
            obj, error = {}, str(exc)  # an unreadable line belongs to the section it is in
        if "sth" in obj or (error and n_heads):
            n_heads += 1
            head = _check_head(line_no, obj, error, key, kid, heads[-1] if heads else None, failures)
            if head is not None:
                heads.append(head)
        elif n_heads:
            failures.append(Failure(Problem.FORMAT, "an entry line after the tree heads", line=line_no))
        else:
            _check_entry(line_no, obj, error, leaves, bad_positions, party_keys, signature_failures)

    n = len(leaves)
    party: list[Checkpoint] = sorted(
        [*earlier_checkpoints, *([checkpoint] if checkpoint else [])], key=lambda c: c.size
    )
    roots = _prefix_roots(leaves, [h.size for h in heads] + [c.size for c in party])

    # signed heads as anchors
    ok_signed = {h.size for h in heads if roots.get(h.size) == h.root}
    by_size: dict[int, _Head] = {}
    for h in heads:
        other = by_size.setdefault(h.size, h)
        if other.root != h.root:
            failures.append(
                Failure(
                    Problem.EQUIVOCATION,
                    f"heads on lines {other.line} and {h.line} sign different roots for size {h.size}",
                    line=h.line,
                )
            )
    mismatched = [h for h in heads if h.size <= n and h.size in roots and roots[h.size] != h.root]
    if mismatched:
        b = min(mismatched, key=lambda h: h.size)
        lo = _below((s for s in ok_signed if s < b.size), b.size)
        failures.append(
            Failure(
                Problem.ROOT,
                f"entries [0, {b.size}) do not give the root signed for size {b.size}",
                index=lo,
                end=b.size,
                line=b.line,
            )
        )
    beyond = [h for h in heads if h.size > n]
    if beyond:
        b = max(beyond, key=lambda h: h.size)
        failures.append(
            Failure(
                Problem.TRUNCATED,
                f"a signed head covers {b.size} entries, the export holds {n}",
                index=_below(ok_signed, n),
                end=n + 1,
                line=b.line,
            )
        )
    named: set[Problem] = set()
    for position, problem, detail, line_no in bad_positions:
        if problem in named:
            continue  # one wrong label usually shifts every later one: name the first of each
        named.add(problem)
        index = _below(ok_signed, position)
        failures.append(Failure(problem, detail, index=index, end=position + 1, line=line_no))

    # party checkpoints as anchors
    consistency: tuple[int, int] | None = None
    ok_party = {c.size for c in party if roots.get(c.size) == c.root}
    for c in party:
        if c.size in ok_party:
            continue
        if c.size > n:
            failures.append(
                Failure(
                    Problem.CHECKPOINT,
                    f"checkpoint covers {c.size} entries, the export holds {n}",
                    index=_below(ok_party, n),
                    end=n + 1,
                )
            )
        elif c.size in roots:
            failures.append(
                Failure(
                    Problem.CHECKPOINT,
                    f"entries [0, {c.size}) do not give the checkpoint's root",
                    index=_below((s for s in ok_party if s < c.size), c.size),
                    end=c.size,
                )
            )
        else:
            failures.append(
                Failure(Problem.CHECKPOINT, f"checkpoint size {c.size} is past an unreadable entry")
            )
        break
    if checkpoint is not None and checkpoint.size in ok_party:
        target = max([checkpoint.size, *(s for s in ok_signed)])
        complete = [leaf for leaf in leaves[:target] if leaf is not None]
        try:
            if len(complete) < target:
                raise ProofError(f"an entry below size {target} is unreadable")
            root2 = roots[target]
            proof = _consistency(complete, checkpoint.size, target)
            verify_consistency(checkpoint.size, target, proof, checkpoint.root, root2)
            consistency = (checkpoint.size, target)
        except ProofError as exc:
            failures.append(Failure(Problem.CHECKPOINT, f"consistency proof: {exc}"))

    largest_signed = max((h.size for h in heads), default=0)
    return Report(
        entries=n,
        tree_heads=n_heads,
        signatures_valid=len(heads),
        roots_matched=sum(1 for h in heads if roots.get(h.size) == h.root),
        verified_size=max(ok_signed, default=0),
        unsigned=max(0, n - largest_signed),
        checkpoints_checked=len(party),
        party_signatures_valid=party_keys.valid,
        consistency=consistency,
        failures=tuple(failures + signature_failures[:1]),
    )
