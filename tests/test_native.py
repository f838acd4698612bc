"""The optional C extensions are loaded, switched off together, and build the Python table.

(The C record walk and the C parser have their own comparisons: ``test_capture_cwalk.py`` and
``test_sip_scan.py``.)
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pandas as pd
import pytest

from sipstats import messages, native, sip
from sipstats.capture import duplicates, pcap
from sipstats.capture.records import Payload
from sipstats.capture.summary import InputSummary
from sipstats.messages import read_capture
from sipstats.sip import SipMessage
from tests import sipfactory as sip_factory
from tests.conftest import CORPUS, PEERS, ROOT, SAMPLES
from tests.gil import counted_during

EXTENSIONS = ("_sipscan", "capture._pcapscan")


def _can_build() -> bool:
    """Whether this machine has what building the extensions takes: the C compiler Python
    was built with, and Python's headers."""
    command = shlex.split(sysconfig.get_config_var("CC") or "cc")
    compiler = shutil.which(command[0]) if command else None
    return compiler is not None and (Path(sysconfig.get_path("include")) / "Python.h").is_file()


def test_every_extension_is_used_where_they_can_be_built() -> None:
    """With a C compiler and Python's headers the install (``pip install -e .``) builds them
    all, and the modules that own them load them: a build that failed (``optional``, so
    silently) or was refused as stale would leave everything on the Python twins, correct but
    several times slower."""
    if native.pure_python():
        pytest.skip("SIPSTATS_PURE_PYTHON is set: the Python twins are under test")
    if not _can_build():
        pytest.skip("no C compiler or Python headers here: sipstats runs on the Python twins")
    for name in EXTENSIONS:
        assert native.extension(name) is not None, f"sipstats.{name} is not built: pip install -e ."
    assert sip.c_scanner() is not None, "sip.py does not use sipstats._sipscan"
    assert pcap.c_walk() is not None, "the readers do not use sipstats.capture._pcapscan"
    assert type(duplicates.duplicate_filter()).__module__ == "sipstats.capture._pcapscan"
    assert messages.MessageTable()._c_columns is not None, "the table is built in Python"


@pytest.mark.parametrize("name", EXTENSIONS)
@pytest.mark.parametrize("version", [None, native.INTERFACE_VERSION + 1])
def test_a_build_of_another_interface_is_refused(name: str, version: int | None) -> None:
    """An old ``.so`` beside newer Python (after a checkout, before a rebuild) would be called
    with arguments it does not take: refused, with the reason, rather than run (None: a build
    from before interface versions)."""
    if native.pure_python() or native.extension(name) is None:
        pytest.skip(f"sipstats.{name} is not built or switched off by the environment")
    module = native.extension(name)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(module, "INTERFACE_VERSION", version, raising=False)
        if version is None:
            patch.delattr(module, "INTERFACE_VERSION")
        with pytest.warns(RuntimeWarning, match=rf"interface version {version}, this code calls"):
            assert native.extension(name) is None
    assert native.extension(name) is module


def test_one_switch_turns_every_extension_off() -> None:
    code = (
        "from sipstats import sip\n"
        "from sipstats.capture import pcap\n"
        "print(sip.c_scanner(), pcap.c_walk())\n"
    )
    for value, expected in (("1", "None None"), ("0", None), ("", None)):
        env = {"SIPSTATS_PURE_PYTHON": value, "PATH": "/usr/bin:/bin"}
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT
        )
        assert done.returncode == 0, done.stderr
        if expected is None:
            assert "None" not in done.stdout, value
        else:
            assert done.stdout.strip() == expected, value


def _captures() -> list[Path]:
    shared = [*sorted(CORPUS.glob("*/*.pcap*")), *sorted(PEERS.glob("**/*.pcap*"))]
    return [*sorted(SAMPLES.glob("*.pcap")), *(path for path in shared if path.is_file())]


def test_batches_parse_like_one_message_at_a_time() -> None:
    """decode_payloads hands whole batches to the C column builder and the rest to Python one
    by one: every capture gives the same table and the same counts of malformed input as the
    Python parser and table alone (samples always; corpus and peers when ../shared is there)."""
    if sip.c_scanner() is None:
        pytest.skip("sipstats._sipscan is not built (see test_every_extension_is_built)")
    for path in _captures():
        with_c = read_capture(path)
        with native.python_twins(sip.C_SCAN_NAME):
            pure = read_capture(path)
        pd.testing.assert_frame_equal(with_c.messages, pure.messages, obj=str(path))
        assert with_c.inputs == pure.inputs, path


def test_c_columns_build_the_python_table() -> None:
    """Rows the C builder scans and rows sip.py parses (here: a non-ASCII User-Agent, which
    the C parser declines) interleave in stream order, within one TCP segment too; text that
    is not plain ASCII codes and decodes unchanged, and a file name with an undecodable byte is
    spelled out (Arrow, which backs pandas' str when pyarrow is installed, holds only UTF-8).
    The builder's strings become the same categories whether Arrow takes its bytes as they
    are or Python makes a str of each (pandas without pyarrow)."""
    if sip.c_scanner() is None:
        pytest.skip("sipstats._sipscan is not built (see test_every_extension_is_built)")
    dialog = {"cseq": 1, "branch": "z9hG4bK1"}
    odd = sip_factory.sip_request(
        "OPTIONS", call_id="odd", headers=[("User-Agent", "Téléphone")], **dialog
    )
    common = sip_factory.sip_request(
        "OPTIONS", call_id="common", headers=[("Expires", "7200")], **dialog
    )
    file = "capture-\udcff.pcap"  # os.fsdecode of a name that is not UTF-8
    batch = [
        Payload(10, file, 1, "10.0.0.1", 5060, "10.0.0.2", 5060, "tcp", odd, segments=2),
        Payload(10, file, 1, "10.0.0.1", 5060, "10.0.0.2", 5060, "tcp", common),
        Payload(5, file, 2, "10.0.0.2", 5060, "10.0.0.1", 5060, "udp", common, encap="hep"),
        *(Payload(20 + n, "b.pcap", n, "::1", 5080, "::2", 5080, "udp", common) for n in range(3)),
    ]

    def table() -> pd.DataFrame:
        built = messages.MessageTable()
        messages.decode_payloads(batch, InputSummary(file), built)
        return built.to_frame()

    with_c = table()
    with native.python_twins(sip.C_SCAN_NAME):
        pure = table()
    pd.testing.assert_frame_equal(with_c, pure)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(messages, "_arrow_text", lambda: None)
        pd.testing.assert_frame_equal(table(), with_c)
    assert with_c["call_id"].tolist()[:3] == ["common", "odd", "common"]
    assert with_c["user_agent"].iloc[1] == "Téléphone"
    assert set(with_c["file"]) == {"capture-\\udcff.pcap", "b.pcap"}


def test_strings_whose_quick_hash_collide_keep_their_own_codes() -> None:
    """The C builder's cache of recent strings is picked and checked by an unkeyed hash, so a
    capture can hold two Call-IDs that agree in both: these two of equal length do. The cache
    trusts a code only once the stored string is compared byte for byte; without that, the
    second one seen would take the first one's code. The cache starts once a column holds more
    than a few strings, hence the others first."""
    if sip.c_scanner() is None:
        pytest.skip("sipstats._sipscan is not built (see test_every_extension_is_built)")
    colliding = ["call-JE02000", "call-RDl3000"]
    call_ids = [f"filler-{n}" for n in range(20)] + [*colliding, *colliding, *reversed(colliding)]
    batch = [
        Payload(
            n,
            "x.pcap",
            n,
            "10.0.0.1",
            5060,
            "10.0.0.2",
            5060,
            "udp",
            sip_factory.sip_request("INVITE", call_id=call_id, cseq=1, branch=f"z9hG4bK{n}"),
        )
        for n, call_id in enumerate(call_ids)
    ]
    built = messages.MessageTable()
    messages.decode_payloads(batch, InputSummary("x.pcap"), built)
    assert built.to_frame()["call_id"].tolist() == call_ids


def _invites(count: int) -> list[bytes]:
    """``count`` INVITEs, each of a call of its own."""
    return [
        sip_factory.sip_request("INVITE", call_id=f"call-{n}", cseq=n, branch=f"z9hG4bK{n}")
        for n in range(count)
    ]


def _payloads(file: str, datagrams: list[bytes]) -> list[Payload]:
    """``datagrams`` as the UDP payloads of frames 0, 1, ... of ``file`` (source ports vary)."""
    return [
        Payload(n, file, n, "10.0.0.1", 5060 + n % 7, "10.0.0.2", 5060, "udp", data)
        for n, data in enumerate(datagrams)
    ]


def test_the_c_parse_lets_other_threads_run() -> None:
    """Columns.scan parses with the GIL released: a thread that needs the GIL counts while one
    long scan runs, and the rows are those sip.py and the Python table make."""
    if sip.c_scanner() is None:
        pytest.skip("sipstats._sipscan is not built (see test_every_extension_is_built)")
    batch = _payloads("threads.pcap", _invites(200) * 40)

    def scanned() -> tuple[int, messages.MessageTable]:
        table = messages.MessageTable()
        return table.scan(batch, 0), table

    (stop, table), counted = counted_during(scanned)
    assert stop == len(batch)
    assert counted > 0
    with native.python_twins(sip.C_SCAN_NAME):
        pure = messages.MessageTable()
        messages.decode_payloads(batch, InputSummary("threads.pcap"), pure)
    pd.testing.assert_frame_equal(table.to_frame(), pure.to_frame())


def test_a_c_builder_appends_another_with_the_gil_released() -> None:
    """Columns.append moves the rows of a part another thread decoded (half a large file:
    seconds) without the GIL, so that the main thread, waiting for the reading thread, can act
    on Ctrl-C: a thread that needs the GIL counts while the appends run; the rows are those of
    one builder fed both batches."""
    if sip.c_scanner() is None:
        pytest.skip("sipstats._sipscan is not built (see test_every_extension_is_built)")
    requests = _invites(8000)
    halves = [_payloads("append.pcap", requests[k::2]) for k in (0, 1)]
    pairs = []
    for _ in range(20):  # counted_during may ask again: the appends, and only they, each time
        built = (messages.MessageTable(), messages.MessageTable())
        for table, half in zip(built, halves, strict=True):
            assert table.scan(half, 0) == len(half)
        pairs.append(built)

    def appended() -> messages.MessageTable:
        to, other = pairs.pop()
        to._c_columns.append(other._c_columns)
        return to

    table, counted = counted_during(appended)
    assert counted > 0
    one = messages.MessageTable()
    assert one.scan(halves[0] + halves[1], 0) == len(requests)
    pd.testing.assert_frame_equal(table.to_frame(), one.to_frame())


def test_python_twins_switches_named_extensions_off_and_restores_them() -> None:
    if pcap.c_walk() is None or sip.c_scanner() is None:
        pytest.skip("the extensions are not built or switched off by the environment")
    with native.python_twins(pcap.C_WALK_NAME):
        assert pcap.c_walk() is None
        assert sip.c_scanner() is not None
        with native.python_twins():
            assert sip.c_scanner() is None
            assert native.pure_python()
        assert sip.c_scanner() is not None
    assert pcap.c_walk() is not None
    assert not native.pure_python()


@pytest.mark.parametrize(
    ("name", "constant", "record"),
    [
        (pcap.C_WALK_NAME, "PAYLOAD_FIELDS", Payload),
        (sip.C_SCAN_NAME, "MESSAGE_FIELDS", SipMessage),
    ],
)
def test_a_build_for_other_records_is_refused(name: str, constant: str, record: type) -> None:
    """Each extension fills its record slot by slot: one built for another field count (a build
    left from another version) is not used, and the warning says to rebuild."""
    if native.pure_python() or native.extension(name) is None:
        pytest.skip(f"sipstats.{name} is not built or switched off by the environment")
    assert native.extension(name, **{constant: record._fields}) is not None
    with pytest.warns(RuntimeWarning, match=rf"{constant} {len(record._fields)}, the record has 3"):
        assert native.extension(name, **{constant: ("a", "b", "c")}) is None


def test_the_c_walk_refuses_a_payload_type_that_is_not_a_tuple() -> None:
    """It fills the type's tuple slots: any other class would be written past its allocation."""
    walker = pcap.c_walk()
    if walker is None:
        pytest.skip("sipstats.capture._pcapscan is not built or switched off")

    class NotATuple:
        pass

    header = (False, 16, pcap.MAX_CAPLEN, 1000, 0, pcap.BATCH, 1)
    rules = (frozenset({5060}), False)
    for kind in (NotATuple, dict):
        with pytest.raises(TypeError, match="tuple subclass"):
            walker.Walker(rules, (kind, "f.pcap", "udp", {}))
    walking = walker.Walker(rules, (Payload, "f.pcap", "udp", {}))
    assert walking.walk(header, b"", 0, 0, 0, 0, 0, 0, []) == (0, 0, 0, 0, 0, 0, 0)


def test_the_c_types_refuse_keyword_arguments() -> None:
    """They take positional arguments only: a keyword (a misspelt option, say) is an error, not
    silently dropped."""
    walker, built = pcap.c_walk(), messages._c_columns()
    if walker is None or built is None:
        pytest.skip("the extensions are not built or switched off")
    rules, parts = (frozenset({5060}), False), (Payload, "f.pcap", "udp", {})
    with pytest.raises(TypeError, match="keyword"):
        walker.Walker(rules, parts, filtered=True)
    with pytest.raises(TypeError, match="keyword"):
        walker.CopyFilter(5_000_000, 10, window=1)
    with pytest.raises(TypeError, match="keyword"):
        type(built)(messages._C_LAYOUT, strict=True)
    assert walker.Walker(rules, parts) is not None
