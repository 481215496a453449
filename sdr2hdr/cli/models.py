"""``sdr2hdr models``: print the model registry."""

from __future__ import annotations

import json

import click


@click.command("models")
@click.option("--json", "as_json", is_flag=True, help="Print the registry as JSON instead of a table.")
def models(as_json: bool) -> None:
    """List the registered models (name, architecture, scale, parameters, file, sha256, training data)."""
    from sdr2hdr.zoo import REGISTRY, weights_dir

    rows = [e.to_dict() for e in REGISTRY.values()]
    for r in rows:
        r["available"] = r["file"] is None or (weights_dir() / str(r["file"])).is_file()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"sdr2hdr models ({weights_dir()})")
    for col in ("name", "architecture", "scale", "parameters", "file", "sha256", "trained on"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(
            str(r["name"]), str(r["architecture"]), f"x{r['scale']}", f"{r['parameters']:,}",
            str(r["file"] or "-") + ("" if r["available"] else " (missing)"),
            (str(r["sha256"])[:16] + "…") if r["sha256"] else "-", str(r["trained_on"]),
        )
    console = Console()
    console.print(table)
    if not rows:
        console.print("No models registered yet: trained weights ship with a later release (see weights/README.md).")
