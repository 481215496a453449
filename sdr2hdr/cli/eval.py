"""``sdr2hdr eval``: the paper's metrics on a prediction against an HDR10 reference.

Parses and reports only; :mod:`sdr2hdr.evaluate` does the work.
"""

from __future__ import annotations

from pathlib import Path

import click


@click.command("eval")
@click.option("--prediction", "prediction", type=click.Path(path_type=Path), default=None,
              help="HDR10 prediction: video file, folder of frames (.npy / 16-bit .png/.tif) or .mat (HDR_YUV).")
@click.option("--reference", "reference", type=click.Path(path_type=Path), required=True,
              help="HDR10 reference: video file, folder of frames or the authors' testset_HDR.mat.")
@click.option("--model", "model", metavar="NAME|PATH", default=None,
              help="Run this model (registry name or .safetensors) on --input instead of reading --prediction.")
@click.option("--input", "sdr_input", type=click.Path(path_type=Path), default=None,
              help="SDR input for --model: video file or the authors' testset_SDR_x2/x4.mat (SDR_YUV).")
@click.option("--metrics", "metrics", default="psnr,ssim,msssim,mpsnr", show_default=True,
              help="Comma-separated: psnr, ssim, msssim, mpsnr, hdrvdp.")
@click.option("--frames", "frames", default=None, metavar="START:STOP|N",
              help="Frames to evaluate (0-based, end exclusive), or N for the first N.")
@click.option("--every", type=click.IntRange(min=1), default=1, show_default=True, help="Use every N-th selected frame.")
@click.option("--ppd", type=click.FloatRange(min=1.0, max=1000.0), default=None,
              help="Pixels per degree for hdrvdp [default: 152.15, a 30-inch 3840x2160 display at 1.5 m].")
@click.option("--json", "json_out", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Write per-frame values and the settings used to this JSON file.")
@click.option("--device", default="auto", show_default=True, metavar="auto|cpu|cuda[:N]",
              help="Where --model runs and the metrics are computed.")
@click.option("--precision", type=click.Choice(["auto", "fp32", "bf16", "fp16"]), default="auto", show_default=True,
              help="For --model: auto is fp16 on CUDA, bf16 on a CPU with AMX / AVX512-BF16, fp32 elsewhere.")
@click.option("--fp32", is_flag=True, help="Alias of --precision fp32.")
@click.option("--tile", type=click.IntRange(min=0), default=0, show_default=True,
              help="Tile side for --model in LR pixels; 0 = automatic.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar; the table is still printed.")
def eval_cmd(
    prediction: Path | None, reference: Path, model: str | None, sdr_input: Path | None, metrics: str,
    frames: str | None, every: int, ppd: float | None, json_out: Path | None, device: str, precision: str, fp32: bool, tile: int,
    quiet: bool,
) -> None:
    """Compare a prediction with an HDR10 reference using the paper's metrics (Table 4).

    Either give --prediction, or --model with --input to run a model and
    evaluate its output directly (no re-encoding in between).
    """
    import torch
    from rich.console import Console
    from rich.table import Table

    from sdr2hdr import evaluate as ev
    from sdr2hdr.errors import Sdr2HdrError

    names = ev.parse_metrics(metrics)
    select = ev.FrameSelection.parse(frames, every)
    if (prediction is None) == (model is None):
        raise Sdr2HdrError("give either --prediction, or --model with --input")
    if model is not None and sdr_input is None:
        raise Sdr2HdrError("--model needs --input (the SDR video or testset_SDR_x*.mat to run it on)")
    if json_out is not None and not json_out.parent.resolve().is_dir():
        raise Sdr2HdrError(f"--json: directory does not exist: {json_out.parent}")
    settings: dict[str, object] = {"reference": str(reference), "frames": frames, "every": every}
    ref_iter = ev.iter_hdr_source(reference, select)
    if model is not None:
        from sdr2hdr.inference.device import resolve_device
        from sdr2hdr.inference.prepare import prepare_model

        dev = resolve_device(device)
        runner = prepare_model(model, device=dev, precision="fp32" if fp32 else precision, tile=tile).runner
        sdr_iter = ev.iter_sdr_source(sdr_input, select)  # type: ignore[arg-type]
        pred_iter = ev.predict(lambda x: runner(x.to(dev)), sdr_iter)
        settings.update(model=model, input=str(sdr_input), device=str(dev), precision=runner.precision,
                        precision_reason=runner.precision_reason)
    else:
        pred_iter = ev.iter_hdr_source(prediction, select)  # type: ignore[arg-type]
        settings["prediction"] = str(prediction)
    pairs = ev.aligned(pred_iter, ref_iter)

    err = Console(stderr=True)
    bar = task = None
    if not quiet:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        # Transient and started on the first evaluated frame: an error stays a single line.
        bar = Progress(TextColumn("[bold]evaluating"), BarColumn(), TextColumn("{task.completed} frames"),
                       TimeElapsedColumn(), console=err, transient=True)

    def advance(n: int) -> None:
        nonlocal task
        if bar is None:
            return
        if task is None:
            bar.start()
            task = bar.add_task("eval", total=None)
        bar.advance(task, n)

    try:
        with torch.inference_mode():
            result = ev.evaluate(pairs, names, ppd=ppd or ev.DEFAULT_PPD, settings=settings, progress=advance)
    finally:
        if bar is not None and task is not None:
            bar.stop()
    if json_out is not None:
        result.write_json(json_out)

    table = Table(title=f"{len(result.per_frame)} frames" + (f" of {model}" if model else ""))
    table.add_column("metric")
    table.add_column("mean", justify="right")
    for name, value in result.means.items():
        table.add_row(name, f"{value:.4f}" if name in ("ssim", "msssim") else f"{value:.2f}")
    Console().print(table)
    if result.flagged:
        err.print(f"[yellow]warning:[/] mpsnr kept no exposure on {len(result.flagged)} frame(s) "
                  f"(original returns -1); left out of the mean: {result.flagged[:10]}")
    if json_out is not None:
        err.print(f"wrote {json_out}")
