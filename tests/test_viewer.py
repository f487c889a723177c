"""The counterexample viewer's page, without a browser: self-contained, every step in its data.

The browser test (``test_viewer_browser.py``) checks what the page shows; these check what it
is given: the embedded JSON, the held blocks, the failed CASes, the commands that write it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from nbbs.check import modelcheck, viewer
from nbbs.check._scenario import decode_schedule
from nbbs.cli.main import main
from nbbs.impl.errors import NBBSError
from nbbs.model import bits

DATA = Path(__file__).parent / "data" / "counterexamples"
FILES = sorted(DATA.glob("*.json"))


def embedded(html: str) -> dict[str, Any]:
    """The JSON blob a page carries (what its script reads)."""
    m = re.search(r'<script type="application/json" id="nbbs-data">(.*?)</script>', html, re.S)
    assert m, "the page has no embedded data"
    blob: dict[str, Any] = json.loads(m.group(1))
    return blob


def assert_self_contained(html: str) -> None:
    """Nothing a browser would fetch: no URL, no external script, style sheet, font or frame."""
    assert not re.search(r"https?://|//cdn|\bsrc\s*=|<link\b|@import|url\(|@font-face", html, re.I)


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_a_kept_counterexample_page_is_self_contained_and_embeds_every_step(path: Path) -> None:
    cx = {"mode": "attempt", "checked_free": False, **modelcheck.load_counterexample(path)}
    html = viewer.page(viewer.from_counterexample(cx))
    assert_self_contained(html)
    d = embedded(html)
    assert len(d["steps"]) == len(cx["schedule"])
    assert len(d["positions"]) == len(cx["schedule"]) + 1
    assert [s["thread"] for s in d["steps"]] == cx["schedule"]
    # The last position's words are the step machines' final words, step by step the same.
    trace, final, _ = modelcheck.replay(cx)
    assert [(s["node"], s["old"], s["new"]) for s in d["steps"]] == [
        (ev.node, str(ev.old), str(ev.new)) for _, ev in trace
    ]
    assert d["positions"][-1]["words"] == [str(w) for w in final]
    assert d["violation"]["step"] == len(cx["schedule"])
    assert cx["property"] in d["violation"]["property"]
    assert all(str(w) in d["words"] for w in final)


def test_the_overlap_shows_both_held_blocks_at_the_breaking_step() -> None:
    d = viewer.data(viewer.from_counterexample(modelcheck.load_counterexample(DATA / "corrected-a.json")))
    held = {b["node"]: b["holder"] for b in d["positions"][-1]["held"]}
    assert held == {1: 0, 11: 2}
    # One step before, thread 0's alloc of the root has not returned: only page 11 is held.
    assert {b["node"] for b in d["positions"][-2]["held"]} == {11}
    assert {(b["first"], b["pages"]) for b in d["positions"][-1]["held"]} == {(0, 8), (3, 1)}


def test_a_lost_cas_is_marked_failed_in_the_model_and_in_the_explorer_alike() -> None:
    # Both threads load node 4 empty, thread 0 occupies it, thread 1's CAS then fails.
    model = viewer.from_counterexample(
        {
            "variant": "counted",
            "depth": 2,
            "threads": [[{"op": "alloc", "order": 0, "node": 4}], [{"op": "alloc", "order": 0, "node": 4}]],
            "schedule": [0, 1, 0, 1],
            "property": "a",
            "message": "none: a made-up trace",
        }
    )
    real = viewer.from_schedule("d2-m2-counted:a0@0,a0@0:abab")
    for trace in (model, real):
        assert [s.kind for s in trace.steps[:4]] == ["load", "load", "cas", "cas_fail"]
        assert trace.steps[3].old == trace.steps[3].new == bits.BUSY
    assert viewer.data(model)["steps"][3]["failed"] is True
    assert model.steps[3].ret == "None" and dict(model.steps[3].state)["pc"] == "done:fail"


def test_the_explorers_page_holds_its_operations_results_and_failure() -> None:
    schedule = "d3-m3-reference:a0@0+f0,a0@1+f0:a19b14a2b5"
    trace = viewer.from_schedule(schedule, quiescent="strict")
    assert len(trace.steps) == len(decode_schedule("a19b14a2b5"))
    assert trace.violation is not None and trace.violation.property == "quiescent"
    assert "node 1 (level 0)" in trace.violation.message
    got = [(s.thread, s.ret, s.acquires) for s in trace.steps if s.ret is not None]
    assert got == [(0, "node 8", 8), (1, "node 9", 9), (0, "ok", None), (1, "ok", None)]
    d = viewer.data(trace)
    assert d["positions"][-1]["held"] == []
    assert any(p["held"] for p in d["positions"])


def test_a_counted_word_is_sent_as_text_with_its_counts_exact() -> None:
    # A count in the top bits of a 63-bit word: beyond what a JavaScript number holds exactly.
    c = bits.COUNT_BITS
    w = ((1 << c) - 1) << (bits.COUNT_SHIFT + c) | 3 << bits.COUNT_SHIFT
    trace = viewer.Trace(
        1, bits.COUNTED, [0, 0, 0, 0], [["alloc(order 0)"]], [viewer.Step(0, 1, "store", 0, w)]
    )
    d = viewer.data(trace)
    fields = {name: value for name, value, _ in d["words"][str(w)]["fields"]}
    assert fields == {"L": str((1 << c) - 1), "R": "3", "OCC": "0"}
    assert [name for name, _ in d["layout"]] == ["L", "R", "OCC"]
    five = viewer.data(viewer.Trace(0, bits.PUBLISHED, [0, 0], [[]], [viewer.Step(0, 1, "store", 0, 0x13)]))
    assert [n for n, _ in five["layout"]] == ["OCC", "COAL_L", "COAL_R", "OCC_L", "OCC_R"]
    assert [v for _, v, _ in five["words"]["19"]["fields"]] == ["1", "0", "0", "1", "1"]


def test_a_message_cannot_end_the_pages_script_early() -> None:
    evil = "</script><script>document.title='owned'</script>"
    trace = viewer.Trace(
        0, bits.PUBLISHED, [0, 0], [[evil]], [], viewer.Violation("(a)", evil, 0), title=evil
    )
    html = viewer.page(trace)
    assert "</script><script>document.title" not in html
    assert embedded(html)["violation"]["message"] == evil


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"steps": [viewer.Step(0, 1, "swap", 0, 1)]}, "kind 'swap'"),
        ({"steps": [viewer.Step(0, 9, "load", 0, 0)]}, "node 9"),
        ({"steps": [viewer.Step(3, 1, "load", 0, 0)]}, "thread 3"),
        ({"words_before": [0, 0]}, "words_before has 2 words"),
        ({"violation": viewer.Violation("(a)", "x", 5)}, "step 5"),
        ({"depth": 9, "words_before": [0] * 1024}, "depth 0 to 8"),
        ({"threads": []}, "at least one thread"),
    ],
)
def test_a_trace_the_page_cannot_show_is_refused_by_name(change: dict[str, Any], words: str) -> None:
    base: dict[str, Any] = {
        "depth": 2,
        "transitions": bits.COUNTED,
        "words_before": [0] * 8,
        "threads": [["alloc(order 0)"]],
        "steps": [viewer.Step(0, 4, "load", 0, 0)],
    }
    with pytest.raises(viewer.ViewerError, match=re.escape(words)) as err:
        viewer.data(viewer.Trace(**{**base, **change}))
    assert isinstance(err.value, NBBSError)


def test_replay_html_writes_the_page_of_its_run(tmp_path: Path) -> None:
    out = tmp_path / "run.html"
    schedule = "d3-m3-reference:a0@0+f0,a0@1+f0:a19b14a2b5"
    res = CliRunner().invoke(main, ["replay", schedule, "--quiescent", "strict", "--html", str(out)])
    assert res.exit_code == 1, res.output
    assert "tree after:" in res.output and f"page written to {out}" in res.output
    html = out.read_text()
    assert_self_contained(html)
    d = embedded(html)
    assert len(d["steps"]) == 40 and d["violation"]["property"] == "quiescent"
    assert schedule in d["source"]


def test_check_html_writes_the_first_counterexample(tmp_path: Path) -> None:
    out = tmp_path / "cx.html"
    args = ["check", "-t", "2", "-d", "2", "--variant", "reference", "--property", "b", "--stop-at-first"]
    res = CliRunner().invoke(main, [*args, "--html", str(out)])
    assert res.exit_code == 1, res.output
    d = embedded(out.read_text())
    assert d["violation"]["property"].startswith("(b)") and d["variant"] == "reference"
    assert d["violation"]["step"] == len(d["steps"]) > 0
    assert all(
        k in ("pc", "n", "child", "top", "cur", "left", "fail")
        for k, _ in d["positions"][1]["threads"][0]["state"]
    )


def test_check_html_without_a_counterexample_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "none.html"
    res = CliRunner().invoke(main, ["check", "-t", "2", "-d", "1", "--html", str(out)])
    assert res.exit_code == 0, res.output
    assert "no counterexample" in res.output and not out.exists()


@pytest.mark.parametrize("command", ["check", "replay"])
def test_a_page_path_in_a_missing_folder_is_refused_before_any_work(command: str, tmp_path: Path) -> None:
    bad = tmp_path / "no" / "such" / "folder" / "x.html"
    args = ["check", "-t", "2", "-d", "2"] if command == "check" else ["replay", "d2-m2-counted:a0@0:a"]
    res = CliRunner().invoke(main, [*args, "--html", str(bad)])
    assert res.exit_code == 2
    assert (
        "does not exist" in res.output and "nbbs check" not in res.output and "tree before" not in res.output
    )


def transcript_of(schedule: str) -> tuple[list[str], viewer.Trace]:
    """What a port speaking the line protocol (PORTING.md) would exchange for an explorer run of
    the real allocator, and the viewer's trace of that run (addresses are pages * 4096)."""
    from nbbs.check._allocators import allocator_classes
    from nbbs.check._scenario import AllocOp, FreeNode, FreeOwn, parse
    from nbbs.check._sched import CALL, CAS_FAIL, KIND_NAMES, RET
    from nbbs.check.explore import run_schedule
    from nbbs.model import geometry as g

    sc, sched = parse(schedule)
    out = run_schedule(sc, sched)
    variant = next(v for v, t in bits.VARIANTS.items() if t is allocator_classes()[sc.allocator].transitions)
    kinds = {k: KIND_NAMES[k] for k in range(6)} | {CAS_FAIL: "cas_fail"}
    lines = [f"> arena {sc.depth} 4096 0 {sc.top_order} {variant}"]
    got: dict[int, list[int | None]] = {}

    def reply(t: int, after: int) -> str:
        for th, node, kind, _, new in out.trace[after + 1 :]:
            if th != t:
                continue
            if kind == RET:
                return f"done {t} " + (
                    "ok"
                    if new is None and not isinstance(op_of[t], AllocOp)
                    else "none"
                    if new is None
                    else str(g.first_page(sc.depth, new) * 4096)
                )
            return f"pending {t} {'cas' if kind == CAS_FAIL else kinds[kind]} {node}"
        raise AssertionError("a thread stopped mid-operation")

    op_of: dict[int, object] = {}
    for i, (t, node, kind, old, new) in enumerate(out.trace):
        if kind == CALL:
            op_of[t] = old
            if isinstance(old, AllocOp):
                lines.append(f"> spawn {t} alloc {old.order} {old.hint}")
            else:
                n = (
                    got[t][old.k]
                    if isinstance(old, FreeOwn)
                    else old.node
                    if isinstance(old, FreeNode)
                    else 0
                )
                assert n is not None
                lines.append(f"> spawn {t} free {g.first_page(sc.depth, n) * 4096} {g.order_of(sc.depth, n)}")
            lines.append("< " + reply(t, i))
        elif kind == RET:
            if isinstance(old, AllocOp):
                got.setdefault(t, []).append(new)
        else:
            lines += [f"> step {t}", f"< did {t} {kinds[kind]} {node} {old} {new}", "< " + reply(t, i)]
    return lines, viewer.from_outcome(sc, out)


@pytest.mark.parametrize(
    "schedule",
    ["d3-m3-reference:a0@0+f0,a0@1+f0:a19b14a2b5", "d2-m2-counted:a0@0,a0@0:abab"],
    ids=["leak", "lost-cas"],
)
def test_a_ports_protocol_transcript_gives_the_same_page_as_the_explorers_run(schedule: str) -> None:
    lines, explored = transcript_of(schedule)
    port = viewer.from_protocol(lines)
    fields = [
        (s.thread, s.node, s.kind, s.old, s.new, s.call is not None, s.acquires, s.releases)
        for s in port.steps
    ]
    assert fields == [
        (s.thread, s.node, s.kind, s.old, s.new, s.call is not None, s.acquires, s.releases)
        for s in explored.steps
    ]
    assert [s.ret is None for s in port.steps] == [s.ret is None for s in explored.steps]
    a, b = viewer.data(port), viewer.data(explored)
    assert [p["held"] for p in a["positions"]] == [p["held"] for p in b["positions"]]
    assert [p["words"] for p in a["positions"]] == [p["words"] for p in b["positions"]]
    assert all(dict(s.state)["pending"] for s in port.steps)


def test_a_transcripts_initial_blocks_and_words_come_from_its_sequential_commands() -> None:
    from nbbs.impl import NBBS

    heap = NBBS(2)
    assert heap.alloc(0, 0) == 0
    before = heap.words()
    lines = [
        "> hello 1",
        "< hello 1 name=test features=controlled,words",
        "> arena 2 4096 0 - counted",
        "< ok",
        "> alloc 0 0",
        "< 0",
        "> words",
        "< words " + " ".join(map(str, before)),
        "> spawn 0 free 0 0",
        "< pending 0 load 4",
        "> step 0",
        f"< did 0 load 4 {bits.BUSY} {bits.BUSY}",
        "< pending 0 store 4",
        "> step 0",
        f"< did 0 store 4 {bits.BUSY} 0",
        "< done 0 ok",
    ]
    trace = viewer.from_protocol(lines, viewer.Violation("made up", "for the test", 2))
    assert list(trace.words_before) == list(before) and dict(trace.held_before) == {4: -1}
    d = viewer.data(trace)
    assert [[b["node"] for b in p["held"]] for p in d["positions"]] == [[4], [], []]
    assert trace.steps[0].call == "free 0 0" and trace.steps[0].releases == 4
    assert trace.steps[1].ret == "ok" and trace.threads == [["free 0 0"]]
    with pytest.raises(viewer.ViewerError, match="line 2: 'spawn' before the 'arena' command"):
        viewer.from_protocol(["> hello 1", "> spawn 0 alloc 0"])
    with pytest.raises(viewer.ViewerError, match="line 1: expected"):
        viewer.from_protocol(["spawn 0 alloc 0"])


def test_the_module_writes_a_kept_counterexamples_page(tmp_path: Path) -> None:
    out = tmp_path / "cx.html"
    assert viewer.main([str(DATA / "reference-b.json"), str(out)]) == 0
    assert embedded(out.read_text())["violation"]["message"].startswith("block 1 is free")
    assert viewer.main([str(DATA / "reference-b.json"), str(tmp_path / "no" / "x.html")]) == 2
    assert viewer.main([str(tmp_path / "missing.json"), str(out)]) == 2
    assert viewer.main([]) == 2


def test_a_counterexample_found_now_replays_to_the_checkers_own_steps() -> None:
    # from_violation replays the checker's schedule from its to_json form: the page must show
    # exactly the accesses the checker printed, word for word.
    cfg = modelcheck.Config(2, 2, variant="reference", properties=("b",), stop_at_first=True)
    v = modelcheck.check(cfg).violations["b"]
    trace = viewer.from_violation(v, cfg)
    assert [(s.thread, s.node, s.old, s.new) for s in trace.steps] == [
        (st.thread, st.event.node, st.event.old, st.event.new) for st in v.steps
    ]
    assert trace.violation is not None and trace.violation.message == v.message
    with pytest.raises(viewer.ViewerError, match="scan-forever"):
        viewer.from_violation(v, modelcheck.Config(2, 2, variant="reference", gives_up=False))


def test_a_run_too_deep_to_draw_is_a_usage_error_not_a_traceback(tmp_path: Path) -> None:
    res = CliRunner().invoke(
        main, ["replay", "d9-m9-counted:a0@0,a0@0:ab", "--html", str(tmp_path / "x.html")]
    )
    assert res.exit_code == 2 and "depth 0 to 8" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "x.html").exists()


def test_a_skipped_free_does_not_shift_the_threads_current_operation() -> None:
    # Both threads load the root empty, thread 1 occupies it and keeps it, so thread 0's alloc
    # fails: its free is skipped and its next call is its third operation.
    trace = viewer.from_schedule("d2-m2-counted:a2@0+f0+a0@1,a2@0:ab")
    calls = [(s.thread, s.op, s.call) for s in trace.steps if s.call is not None]
    assert calls == [
        (0, 0, "alloc(order 2, hint 0)"),
        (1, 0, "alloc(order 2, hint 0)"),
        (0, 2, "alloc(order 0, hint 1)"),
    ]
    last = viewer.data(trace)["positions"][-1]["threads"][0]
    assert last["opIndex"] == 2 and last["op"] == "alloc(order 0, hint 1)"
