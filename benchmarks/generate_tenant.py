"""Generate a realistic synthetic Datasphere tenant as CSN files, one folder per space.

Each space holds language-dependent text entities, local and remote tables, dimensions with text associations,
views on tables and on other views (a share of them with left or inner joins), analytical facts and analytic
models with a business layer (fact and dimension sources). Names include dots, spaces, non-ASCII letters and
pairs that differ only in case, as real exports do. The output is deterministic for a given seed.

    python benchmarks/generate_tenant.py --assets 100000 --out benchmarks/data/tenant_100k
"""

from __future__ import annotations

import argparse
import random
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

WORDS = (
    "Sales",
    "Order",
    "Customer",
    "Product",
    "Material",
    "Plant",
    "Supplier",
    "Invoice",
    "Delivery",
    "Contract",
    "Employee",
    "Cost",
    "Center",
    "Profit",
    "Ledger",
    "Account",
    "Region",
    "Country",
    "Currency",
    "Campaign",
    "Kunde",
    "Übersicht",
    "Auftragsposition",
    "Région",
    "Société",
    "Ærø",
    "Straße",
    "Año",
    "Période",
    "Øre",
)
COLUMN_WORDS = (
    "ID",
    "Code",
    "Name",
    "Date",
    "Amount",
    "Quantity",
    "Status",
    "Type",
    "Category",
    "Description",
    "Created",
    "Changed",
    "Valid From",
    "Valid To",
    "Währung",
    "Menge",
    "Prix",
    "Unit",
    "Group",
    "Key",
    "Region",
    "Owner",
)
STRING_LENGTHS = (1, 2, 3, 4, 5, 10, 12, 18, 20, 30, 40, 60, 80, 100, 255, 1000, 5000)
# (type, facets) with relative weights: most columns are strings, then decimals, integers and dates.
COLUMN_TYPES: tuple[tuple[str, int], ...] = (
    ("cds.String", 55),
    ("cds.Decimal", 12),
    ("cds.Integer", 8),
    ("cds.Integer64", 3),
    ("cds.Date", 7),
    ("cds.Timestamp", 4),
    ("cds.Double", 3),
    ("cds.Boolean", 3),
    ("cds.LargeString", 1),
    ("cds.UUID", 2),
    ("cds.DecimalFloat", 1),
    ("cds.hana.ST_POINT", 1),
)
# Share of each asset kind in a space, in creation order (later kinds read from earlier ones).
MIX = (
    ("text", 0.06),
    ("table", 0.34),
    ("remote_table", 0.10),
    ("dimension", 0.08),
    ("view", 0.26),
    ("fact", 0.10),
    ("analytic_model", 0.06),
)
DEFINITIONS_PER_FILE = 50


@dataclass
class Asset:
    name: str
    kind: str
    elements: dict[str, dict[str, Any]]
    definition: dict[str, Any] = field(default_factory=dict)


class SpaceBuilder:
    """Builds the definitions of one space; `rng` drives every choice."""

    def __init__(self, space: str, rng: random.Random) -> None:
        self.space = space
        self.rng = rng
        self.assets: list[Asset] = []
        self.by_kind: dict[str, list[Asset]] = {}
        self.business_layer: dict[str, Any] = {}
        self.editor_settings: dict[str, Any] = {}
        self.names: set[str] = set()

    # ---------------------------------------------------------------- names
    def _unique(self, name: str) -> str:
        while name in self.names:
            name += "_x"
        self.names.add(name)
        return name

    def asset_name(self, kind: str, index: int) -> str:
        rng = self.rng
        words = "_".join(rng.sample(WORDS, 2))
        prefix = {
            "text": "T",
            "table": "LT",
            "remote_table": "RT",
            "dimension": "DIM",
            "view": "V",
            "fact": "F",
            "analytic_model": "AM",
        }[kind]
        roll = rng.random()
        if roll < 0.02:
            return self._unique(f"SAP.{words.upper()}.{prefix}_{index}")
        if roll < 0.04:
            return self._unique(f"{prefix} {words.replace('_', ' ')} {index}")
        if roll < 0.05 and kind in ("table", "view"):
            # Two objects whose names differ only in case: both meet in one Glue name.
            upper = self._unique(f"{prefix}_{words}_{index}".upper())
            self.pending_twin = upper
            return self._unique(f"{prefix}_{words}_{index}")
        return self._unique(f"{prefix}_{words}_{index}")

    def column_name(self, used: set[str]) -> str:
        rng = self.rng
        base = (
            " ".join(rng.sample(COLUMN_WORDS, 2))
            if rng.random() < 0.08
            else "_".join(w.upper() for w in rng.sample(COLUMN_WORDS, 2)).replace(" ", "_")
        )
        name, n = base, 1
        while name in used:
            n += 1
            name = f"{base}_{n}"
        used.add(name)
        return name

    # ---------------------------------------------------------------- elements
    def scalar(self, label: str) -> dict[str, Any]:
        rng = self.rng
        (type_,) = rng.choices([t for t, _ in COLUMN_TYPES], weights=[w for _, w in COLUMN_TYPES])
        element: dict[str, Any] = {"@EndUserText.label": label, "type": type_}
        if type_ == "cds.String":
            element["length"] = rng.choice(STRING_LENGTHS)
        elif type_ == "cds.Decimal":
            precision = rng.choice((5, 10, 13, 15, 17, 23, 31, 34))
            element["precision"] = precision
            element["scale"] = rng.choice((0, 2, 3, 4)) if precision > 4 else 0
        elif type_ == "cds.hana.ST_POINT":
            element["srid"] = 4326
        if rng.random() < 0.15:
            element["@EndUserText.quickInfo"] = f"{label}: maintained by the {self.space} team"
        return element

    def new_columns(self, count: int, keys: int = 1) -> dict[str, dict[str, Any]]:
        used: set[str] = set()
        elements = {}
        for i in range(count):
            name = self.column_name(used)
            element = self.scalar(name.replace("_", " ").title())
            if i < keys:
                element.update(key=True, notNull=True)
            elements[name] = element
        if self.rng.random() < 0.02 and elements:
            # A column that differs from another only in case.
            first = next(iter(elements))
            if first.upper() != first.lower() and first.swapcase() not in elements:
                elements[first.swapcase()] = dict(elements[first], key=False)
                elements[first.swapcase()].pop("notNull", None)
        return elements

    # ---------------------------------------------------------------- assets
    def add(self, asset: Asset) -> None:
        asset.definition.setdefault("kind", "entity")
        asset.definition["elements"] = asset.elements
        self.assets.append(asset)
        self.by_kind.setdefault(asset.kind, []).append(asset)
        if "query" in asset.definition:
            self.editor_settings[asset.name] = self.canvas(asset)

    def canvas(self, asset: Asset) -> dict[str, Any]:
        """Graphical view builder state, as exports carry it: a JSON string with one node per element."""
        ids = [f"{self.rng.getrandbits(128):032x}" for _ in range(len(asset.elements) + 1)]
        nodes = {
            i: {"name": n, "classDefinition": "sap.cdw.querybuilder.Element", "x": 40, "y": 24 * k}
            for k, (i, n) in enumerate(zip(ids[1:], asset.elements, strict=True))
        }
        model = {
            "contents": {
                ids[0]: {
                    "classDefinition": "sap.cdw.querybuilder.Model",
                    "name": asset.name,
                    "label": asset.name,
                    "modificationDate": 1716537184574,
                    "nodes": nodes,
                }
            }
        }
        return {
            "editor": {"lastModifier": "GRAPHICALVIEWBUILDER", "default": "GRAPHICALVIEWBUILDER"},
            "uiModel": orjson.dumps(model).decode(),
        }

    def pick(self, *kinds: str) -> Asset:
        pool = [a for k in kinds for a in self.by_kind.get(k, [])]
        return pool[-1 - int(self.rng.random() ** 2 * len(pool))]

    def text_entity(self, index: int) -> None:
        name = self.asset_name("text", index)
        elements = {
            "ID": {
                "@EndUserText.label": "ID",
                "type": "cds.String",
                "length": 10,
                "key": True,
                "notNull": True,
            },
            "LANGUAGE": {
                "@EndUserText.label": "Language",
                "type": "cds.String",
                "length": 2,
                "key": True,
                "@Semantics.language": True,
            },
            "SHORT_TEXT": {
                "@EndUserText.label": "Short text",
                "type": "cds.String",
                "length": 20,
                "@Semantics.text": True,
            },
            "LONG_TEXT": {
                "@EndUserText.label": "Long text",
                "type": "cds.String",
                "length": 60,
                "@Semantics.text": True,
            },
        }
        definition = {
            "@EndUserText.label": f"{name} texts",
            "@ObjectModel.modelingPattern": {"#": "LANGUAGE_DEPENDENT_TEXT"},
        }
        self.add(Asset(name, "text", elements, definition))

    def table(self, index: int, remote: bool = False) -> None:
        name = self.asset_name("remote_table" if remote else "table", index)
        twin = getattr(self, "pending_twin", None)
        self.pending_twin = None
        count = self.rng.randint(8, 45)
        definition: dict[str, Any] = {"@EndUserText.label": name.replace("_", " ")}
        if remote:
            definition["@DataWarehouse.remote.connection"] = f"S4_{self.space}"
            definition["@DataWarehouse.remote.entity"] = name.upper()
        else:
            definition["@ObjectModel.modelingPattern"] = {"#": "DATA_STRUCTURE"}
        self.add(
            Asset(
                name,
                "remote_table" if remote else "table",
                self.new_columns(count, self.rng.randint(1, 3)),
                definition,
            )
        )
        if twin is not None:
            self.add(Asset(twin, "table", self.new_columns(count // 2 + 2), {"@EndUserText.label": twin}))

    def dimension(self, index: int) -> None:
        name = self.asset_name("dimension", index)
        text = self.pick("text")
        elements = self.new_columns(self.rng.randint(5, 15), keys=1)
        key = next(iter(elements))
        elements[key]["@ObjectModel.text.association"] = {"=": "_Text"}
        elements["_Text"] = {
            "type": "cds.Association",
            "target": text.name,
            "cardinality": {"max": "*"},
            "on": [{"ref": ["_Text", "ID"]}, "=", {"ref": [key]}],
        }
        base = self.pick("table", "remote_table")
        definition = {
            "@EndUserText.label": f"{name} dimension",
            "@ObjectModel.modelingPattern": {"#": "ANALYTICAL_DIMENSION"},
            "@ObjectModel.supportedCapabilities": [{"#": "ANALYTICAL_DIMENSION"}],
            "query": {
                "SELECT": {
                    "from": {"ref": [base.name]},
                    "columns": [{"ref": [c]} for c in elements if not c.startswith("_")],
                }
            },
        }
        self.add(Asset(name, "dimension", elements, definition))

    def _select(self, base: Asset, share: float) -> dict[str, dict[str, Any]]:
        names = [n for n, e in base.elements.items() if e.get("type") != "cds.Association"]
        keep = max(1, int(len(names) * share))
        return {n: dict(base.elements[n]) for n in names[:keep]}

    def view(self, index: int, fact: bool = False) -> None:
        rng = self.rng
        name = self.asset_name("fact" if fact else "view", index)
        twin = getattr(self, "pending_twin", None)
        self.pending_twin = None
        base = self.pick("table", "remote_table", "view")
        elements = self._select(base, rng.uniform(0.6, 1.0))
        source: dict[str, Any] = {"ref": [base.name], "as": "a"}
        columns: list[Any] = [{"ref": ["a", c]} for c in elements]
        if rng.random() < 0.4:
            other = self.pick("table", "view", "dimension")
            extra = {
                n: e for n, e in self._select(other, 0.3).items() if n not in elements and not e.get("key")
            }
            source = {
                "join": rng.choice(("left", "inner")),
                "args": [source, {"ref": [other.name], "as": "b"}],
                "on": [{"ref": ["a", next(iter(elements))]}, "=", {"ref": ["b", next(iter(other.elements))]}],
            }
            columns += [{"ref": ["b", c]} for c in extra]
            elements.update(extra)
        definition: dict[str, Any] = {"@EndUserText.label": name.replace("_", " ")}
        if fact:
            definition["@ObjectModel.modelingPattern"] = {"#": "ANALYTICAL_FACT"}
            for col, element in list(elements.items())[-3:]:
                if element["type"] in ("cds.Decimal", "cds.Integer", "cds.Double", "cds.Integer64"):
                    elements[col] = dict(
                        element,
                        **{
                            "@Aggregation.default": {"#": "SUM"},
                            "@AnalyticsDetails.measureType": {"#": "BASE"},
                        },
                    )
        definition["query"] = {"SELECT": {"from": source, "columns": columns}}
        self.add(Asset(name, "fact" if fact else "view", elements, definition))
        if twin is not None:
            self.add(
                Asset(
                    twin,
                    "view",
                    self._select(base, 0.5),
                    {"query": {"SELECT": {"from": {"ref": [base.name]}}}},
                )
            )

    def analytic_model(self, index: int) -> None:
        name = self.asset_name("analytic_model", index)
        fact = self.pick("fact")
        elements = {n: dict(e) for n, e in fact.elements.items()}
        dims = {}
        for i in range(self.rng.randint(1, 3)):
            dim = self.pick("dimension")
            dims[f"dim{i}"] = {"dataEntity": {"key": dim.name}}
        definition = {
            "@EndUserText.label": f"{name} model",
            "@ObjectModel.modelingPattern": {"#": "ANALYTICAL_CUBE"},
            "@ObjectModel.supportedCapabilities": [{"#": "ANALYTICAL_PROVIDER"}],
            "query": {"SELECT": {"from": {"ref": [fact.name]}, "columns": [{"ref": [c]} for c in elements]}},
        }
        self.business_layer[name] = {
            "sourceModel": {
                "factSources": {"fact": {"dataEntity": {"key": fact.name}}},
                "dimensionSources": dims,
            },
        }
        self.add(Asset(name, "analytic_model", elements, definition))

    def build(self, count: int) -> None:
        self.pending_twin = None
        index = 0
        for kind, share in MIX:
            for _ in range(max(1, round(count * share))):
                index += 1
                if kind == "text":
                    self.text_entity(index)
                elif kind in ("table", "remote_table"):
                    self.table(index, remote=kind == "remote_table")
                elif kind == "dimension":
                    self.dimension(index)
                elif kind in ("view", "fact"):
                    self.view(index, fact=kind == "fact")
                else:
                    self.analytic_model(index)

    def files(self) -> list[tuple[str, dict[str, Any]]]:
        """The space's CSN documents: definitions in chunks, each with the business layer of its models."""
        out = []
        for start in range(0, len(self.assets), DEFINITIONS_PER_FILE):
            chunk = self.assets[start : start + DEFINITIONS_PER_FILE]
            payload: dict[str, Any] = {
                "definitions": {a.name: a.definition for a in chunk},
                "version": {"csn": "1.0"},
                "meta": {"creator": "metasync benchmark generator"},
                "$version": "1.0",
            }
            layer = {a.name: self.business_layer[a.name] for a in chunk if a.name in self.business_layer}
            if layer:
                payload["businessLayerDefinitions"] = layer
            canvas = {a.name: self.editor_settings[a.name] for a in chunk if a.name in self.editor_settings}
            if canvas:
                payload["editorSettings"] = canvas
            out.append((f"{self.space.lower()}_{start // DEFINITIONS_PER_FILE:04d}.json", payload))
        return out


def generate(assets: int, out: Path, seed: int = 7, per_space: int = 2000) -> dict[str, int]:
    """Write a tenant of about `assets` assets under `out` (replaced); returns counts."""
    if out.exists():
        shutil.rmtree(out)
    spaces = max(1, round(assets / per_space))
    counts = {"spaces": spaces, "files": 0, "assets": 0, "columns": 0, "bytes": 0}
    for s in range(spaces):
        space = f"SPACE_{s:03d}"
        builder = SpaceBuilder(space, random.Random(f"{seed}-{space}"))
        builder.build(assets // spaces)
        folder = out / space
        folder.mkdir(parents=True)
        for filename, payload in builder.files():
            data = orjson.dumps(payload)
            (folder / filename).write_bytes(data)
            counts["files"] += 1
            counts["bytes"] += len(data)
        counts["assets"] += len(builder.assets)
        counts["columns"] += sum(
            1 for a in builder.assets for e in a.elements.values() if e.get("type") != "cds.Association"
        )
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", type=int, default=10_000)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    counts = generate(args.assets, args.out, args.seed)
    print(orjson.dumps(counts).decode())


if __name__ == "__main__":
    main()
