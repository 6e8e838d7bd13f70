"""Several scenes: ``--scenes LIST`` (text, JSON, STAC-like), the overlap rule, stable ids."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
import shapely
import typer
from typer.testing import CliRunner

from tests.helpers.synth import utm_scene, write_aoi
from zoomplan.errors import InputError
from zoomplan.geo.scenelist import RULE, RULE_WRITTEN, SceneEntry, order_scenes, read_scene_list
from zoomplan.plan.pipeline import plan


@pytest.fixture
def two(tmp_path: Path) -> tuple[Path, Path, Path]:
    """Scenes a (440000-440480 m E) and b (440240-440720 m E), overlapping by 240 m, different pixels; an AOI over
    both."""
    a = utm_scene(tmp_path / "a.tif", x0=440000.0, size=48, seed=1)
    b = utm_scene(tmp_path / "b.tif", x0=440240.0, size=48, seed=2)
    aoi = write_aoi(tmp_path / "aoi.geojson", [shapely.box(440020, 4169620, 440700, 4169940)], "EPSG:32618", ids=["x"])
    return a, b, aoi


def stac(items: list[tuple[str, float | None, str | None]]) -> dict:
    feats = []
    for href, cc, dt in items:
        props = {} if cc is None else {"eo:cloud_cover": cc}
        if dt:
            props["datetime"] = dt
        feats.append({"type": "Feature", "id": Path(href).stem, "properties": props, "assets": {"lr": {"href": href}}})
    return {"type": "FeatureCollection", "features": feats}


def test_text_and_json_lists(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    t = tmp_path / "sub" / "list.txt"
    t.write_text("# scenes\n a.tif  # first\n\n/abs/b.tif\n")
    assert [e.path for e in read_scene_list(t)] == [tmp_path / "sub" / "a.tif", Path("/abs/b.tif")]
    j = tmp_path / "list.json"
    j.write_text(json.dumps(["a.tif", "c/d.tif"]))
    assert [e.path for e in read_scene_list(j)] == [tmp_path / "a.tif", tmp_path / "c" / "d.tif"]


def test_order_rule() -> None:
    def e(name: str, cc: float | None, day: int | None) -> SceneEntry:
        return SceneEntry(Path(name), cc, datetime(2020, 1, day, tzinfo=timezone.utc) if day else None)

    plain = [e("x", None, None), e("y", None, None)]
    assert order_scenes(plain) == (plain, RULE_WRITTEN)
    ents = [
        e("old-clear", 1.0, 1),
        e("cloudy", 30.0, 9),
        e("new-clear", 1.0, 5),
        e("unknown", None, 9),
        e("clear", 0.0, None),
    ]
    got, rule = order_scenes(ents)
    assert rule == RULE and [x.path.name for x in got] == ["clear", "new-clear", "old-clear", "cloudy", "unknown"]
    assert [x.path.name for x in order_scenes(ents[::-1])[0]] == [
        "clear",
        "new-clear",
        "old-clear",
        "cloudy",
        "unknown",
    ]


@pytest.mark.parametrize(
    "text, msg",
    [
        ("", "lists no scene"),
        ("{not json", "invalid JSON"),
        ('{"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {}}]}', "has no assets"),
        (
            '{"type": "FeatureCollection", "features": [{"assets": {"lr": {"href": "a.tif"}}, "properties": '
            '{"eo:cloud_cover": "low"}}]}',
            "not a number",
        ),
        ('[{"assets": {"lr": {"href": "a.tif"}}, "properties": {"datetime": "yesterday"}}]', "not RFC 3339"),
        ('["https://example.com/a.tif"]', "local files only"),
        ("[3]", "not a path or a STAC Item"),
    ],
)
def test_bad_lists(tmp_path: Path, text: str, msg: str) -> None:
    p = tmp_path / "bad.json"
    p.write_text(text)
    with pytest.raises(InputError, match=msg) as ei:
        read_scene_list(p)
    assert "\n" not in str(ei.value)


def test_overlap_rule_ids_stable_and_list_form_irrelevant(
    tmp_path: Path, two: tuple[Path, Path, Path], tiny_checkpoint: Path
) -> None:
    a, b, aoi = two
    ab = plan(aoi, [a, b], model=tiny_checkpoint, device="cpu")
    ba = plan(aoi, [b, a], model=tiny_checkpoint, device="cpu")
    assert ab.table.patch_ids() == ba.table.patch_ids()  # ids depend on the grid only
    assert ab.stats.tiles_by_scene["a"] > ba.stats.tiles_by_scene["a"]  # the first scene wins the overlap
    assert ab.stats.tiles_planned == ba.stats.tiles_planned == ab.stats.tiles_total
    # the same rule, written four ways -> byte-identical orders
    outs = []
    lists = {
        "l.txt": f"{a.name}\n{b.name}\n",
        "l.json": json.dumps([a.name, b.name]),
        "s1.json": json.dumps(
            stac([(a.name, 2.0, "2016-01-01T00:00:00Z"), (b.name, 2.0, "2015-01-01T00:00:00Z")])
        ),  # tie: newest first
        "s2.json": json.dumps(stac([(b.name, 9.5, "2017-01-01T00:00:00Z"), (a.name, 0.5, None)])),  # least cloudy first
    }
    for name, text in lists.items():
        lp = tmp_path / name
        lp.write_text(text)
        out = tmp_path / f"{name}.geojson"
        paths, rule = [e.path for e in order_scenes(read_scene_list(lp))[0]], order_scenes(read_scene_list(lp))[1]
        r = plan(aoi, paths, model=tiny_checkpoint, device="cpu", out=out, scene_rule=rule)
        assert r.stats.tiles_by_scene == ab.stats.tiles_by_scene
        outs.append(json.loads(out.read_text()))
    for o in outs:
        o["summary"]["parameters"].pop("scene_rule")
        o["summary"]["request"].pop("scene_rule")  # the rule as each form states it
        o["summary"].pop("aoi_source", None)
    assert all(o == outs[0] for o in outs[1:])
    assert outs[0]["features"] == [f for f in json.loads(json.dumps(ab.order_collection))["features"]]


def test_cli_scenes(tmp_path: Path, cli: typer.Typer, two: tuple[Path, Path, Path], tiny_checkpoint: Path) -> None:
    a, b, aoi = two
    lst = tmp_path / "scenes.json"
    lst.write_text(json.dumps(stac([(b.name, 40.0, None), (a.name, 3.0, None)])))
    out1, out2 = tmp_path / "o1.geojson", tmp_path / "o2.geojson"
    r = CliRunner().invoke(
        cli,
        [
            "plan",
            str(aoi),
            "--scenes",
            str(lst),
            "--model",
            str(tiny_checkpoint),
            "--device",
            "cpu",
            "--out",
            str(out1),
            "-q",
        ],
    )
    assert r.exit_code == 0, r.stderr
    s = json.loads(out1.read_text())["summary"]
    assert s["parameters"]["scene_rule"] == RULE and [x["id"] for x in s["scenes"]] == ["a", "b"]
    lst.write_text(json.dumps(stac([(a.name, 3.0, None), (b.name, 40.0, None)])))
    r = CliRunner().invoke(
        cli,
        [
            "plan",
            str(aoi),
            "--scenes",
            str(lst),
            "--model",
            str(tiny_checkpoint),
            "--device",
            "cpu",
            "--out",
            str(out2),
            "-q",
        ],
    )
    assert r.exit_code == 0 and out1.read_bytes() == out2.read_bytes()
    bad = tmp_path / "bad.txt"
    bad.write_text("# nothing\n")
    r = CliRunner().invoke(cli, ["plan", str(aoi), "--scenes", str(bad), "--out", str(tmp_path / "x.geojson")])
    assert r.exit_code == 2 and r.stderr.startswith("error: scene list") and r.stderr.count("\n") == 1
    assert not (tmp_path / "x.geojson").exists()
    r = CliRunner().invoke(cli, ["plan", str(aoi)])
    assert r.exit_code == 2 and "--lr" in r.stderr and "--scenes" in r.stderr
