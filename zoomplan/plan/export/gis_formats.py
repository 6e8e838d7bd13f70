"""GIS copies of an order file: KML, GeoPackage, Shapefile, CSV with WKT, all lon/lat (EPSG:4326).

The geometries are the orders as planned (no simplification, no splitting: the planner already
applied the vendor's rules), with the order's properties as fields. List values (``dominant_classes``)
become one comma-separated string; the plan's ``summary`` is not copied.

- ``kml``: GDAL's KML driver, one Placemark per order named by ``order_id``, the other properties as
  ExtendedData; layer (Folder) ``orders``.
- ``gpkg``: layer ``orders``, EPSG:4326.
- ``shp``: ``PATH.shp`` with its ``.shx .dbf .prj .cpg`` (UTF-8) beside it, or, when PATH ends in
  ``.zip``, one zip holding ``STEM.shp`` and its sidecars (GDAL reads it directly). Field names are cut
  to the format's 10 characters (:data:`SHP_FIELDS`; others truncated and made unique), strings to
  254 characters. A stale spatial index of the same name (``.qix .sbn .sbx``) is removed.
- ``csv``: one row per order, the properties then ``WKT`` (lon lat, 7 decimals): GDAL, QGIS and
  pandas read the ``WKT`` column as the geometry. CSV carries no CRS: it is EPSG:4326.

Every file is staged in a hidden folder beside the target and renamed into place only when complete.
"""

from __future__ import annotations

import csv
import json
import logging
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import shapely

from zoomplan.atomic import atomic_folder, atomic_path
from zoomplan.errors import InputError
from zoomplan.plan.export.order_file import OrderFile

log = logging.getLogger(__name__)

LAYER = "orders"
SHP_FIELDS = {
    "order_id": "order_id",
    "vendor": "vendor",
    "product": "product",
    "area_km2": "area_km2",
    "billed_km2": "billed_km2",
    "price_per_km2": "usd_km2",
    "est_cost_usd": "cost_usd",
    "n_patches": "n_patches",
    "mean_probability": "mean_prob",
    "aoi_index": "aoi_index",
    "aoi_id": "aoi_id",
    "dominant_classes": "classes",
    "whole_aoi": "whole_aoi",
    "width_ok": "width_ok",
    "inside_aoi": "inside_aoi",
}
"""Shapefile field names (at most 10 characters) of the order properties zoomplan writes."""
_SHP_SIDECARS = (".shp", ".shx", ".dbf", ".prj", ".cpg")
_STALE = (".qix", ".sbn", ".sbx")


def _value(v: Any) -> Any:
    if isinstance(v, (list, tuple)):
        return ", ".join(str(x) for x in v)
    if isinstance(v, dict):
        return json.dumps(v, ensure_ascii=False)
    return v


def records(order: OrderFile) -> tuple[list[str], list[list[Any]]]:
    """Field names (first-seen order, ``order_id`` first) and one row of flat values per order."""
    names = ["order_id"]
    for o in order.orders:
        names += [k for k in o.properties if k not in names]
    rows = [[o.order_id if k == "order_id" else _value(o.properties.get(k)) for k in names] for o in order.orders]
    return names, rows


def _frame(order: OrderFile, names: Sequence[str], rows: Sequence[Sequence[Any]]) -> Any:
    import geopandas as gpd

    cols = {n: [r[i] for r in rows] for i, n in enumerate(names)}
    return gpd.GeoDataFrame(cols, geometry=[o.geometry for o in order.orders], crs="EPSG:4326")


def _shp_names(fields: Sequence[str]) -> list[str]:
    out: list[str] = []
    for f in fields:
        base = SHP_FIELDS.get(f, f[:10])
        name, k = base, 1
        while name.lower() in (n.lower() for n in out):
            suffix = f"_{k}"
            name, k = base[: 10 - len(suffix)] + suffix, k + 1
        out.append(name)
    return out


def _write_gdal(
    order: OrderFile, target: Path, driver: str, names: Sequence[str], rows: Sequence[Sequence[Any]], **kw: Any
) -> list[Path]:
    import pyogrio

    frame = _frame(order, names, rows)
    with atomic_folder(target.parent) as tmp:
        pyogrio.write_dataframe(frame, tmp / target.name, driver=driver, **kw)
        staged = sorted(p.name for p in tmp.iterdir() if p.is_file())
    return [target.parent / n for n in staged]


def write_kml(order: OrderFile, target: Path) -> list[Path]:
    """KML (GDAL's KML driver): Placemarks named by ``order_id``, properties as ExtendedData."""
    fields, rows = records(order)
    return _write_gdal(order, target, "KML", fields, rows, layer=LAYER, dataset_options={"NameField": "order_id"})


def write_gpkg(order: OrderFile, target: Path) -> list[Path]:
    """GeoPackage with one layer ``orders`` in EPSG:4326."""
    fields, rows = records(order)
    return _write_gdal(order, target, "GPKG", fields, rows, layer=LAYER)


def write_shp(order: OrderFile, target: Path) -> list[Path]:
    """Shapefile ``target`` (+ sidecars) or, for a ``.zip`` target, one zipped Shapefile."""
    import pyogrio

    fields, rows = records(order)
    for i, f in enumerate(fields):
        for r in rows:
            if isinstance(r[i], str) and len(r[i].encode("utf-8")) > 254:
                log.warning("Shapefile field %s: a value longer than 254 bytes is cut", f)
                r[i] = r[i].encode("utf-8")[:254].decode("utf-8", "ignore")
    names = _shp_names(fields)
    opts = {"ENCODING": "UTF-8"}
    if target.suffix.lower() == ".zip":
        stem = target.name[: -len(".shp.zip")] if target.name.lower().endswith(".shp.zip") else target.stem
        with atomic_folder(target.parent) as tmp:
            parts = tmp / "parts"
            parts.mkdir()
            pyogrio.write_dataframe(
                _frame(order, names, rows),
                parts / f"{stem}.shp",
                driver="ESRI Shapefile",
                layer=stem,
                layer_options=opts,
            )
            with zipfile.ZipFile(tmp / target.name, "w", compression=zipfile.ZIP_DEFLATED) as z:
                for p in sorted(parts.iterdir()):
                    z.write(p, p.name)
        return [target]
    written = _write_gdal(order, target, "ESRI Shapefile", names, rows, layer=target.stem, layer_options=opts)
    for ext in _STALE:
        stale = target.with_suffix(ext)
        if stale.is_file():
            stale.unlink()
            log.info("removed stale spatial index %s", stale)
    return written


def write_csv(order: OrderFile, target: Path) -> list[Path]:
    """CSV, one row per order: its properties then ``WKT`` (EPSG:4326 lon lat, 7 decimals)."""
    fields, rows = records(order)
    with atomic_path(target) as tmp, open(tmp, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow([*fields, "WKT"])
        for o, r in zip(order.orders, rows, strict=True):
            cells = ["true" if v is True else "false" if v is False else "" if v is None else v for v in r]
            w.writerow([*cells, shapely.to_wkt(o.geometry, rounding_precision=7, trim=True)])
    return [target]


_WRITERS = {"kml": write_kml, "gpkg": write_gpkg, "shp": write_shp, "csv": write_csv}


def write(order: OrderFile, fmt: str, target: Path) -> list[Path]:
    """Write ``order`` as GIS format ``fmt`` (kml, gpkg, shp, csv) to ``target``; the files written."""
    try:
        writer = _WRITERS[fmt]
    except KeyError:
        raise InputError(f"unknown GIS format {fmt!r}; choose one of: {', '.join(_WRITERS)}") from None
    return writer(order, target)
