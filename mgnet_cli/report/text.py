"""The tables the commands print: ``mgnet eval``'s accuracies and confusion matrix (and their
JSON), ``mgnet info``'s level table, ``mgnet solve``'s residual per cycle; plain text."""

from pathlib import Path
from typing import Any

from mgnet_cli.pde.solve import SolveResult
from mgnet_cli.train.evaluation import Evaluation

def as_json(result: Evaluation, classes: tuple[str, ...], checkpoint: Path, split: str, tta: str) -> dict:
    return {
        "checkpoint": str(checkpoint), "split": split, "tta": tta, "images": result.count,
        "loss": result.loss, "top1": result.top1, "top5": result.top5, "classes": list(classes),
        "per_class_accuracy": dict(zip(classes, result.per_class)),
        "confusion": result.confusion.tolist(),
    }


def format_evaluation(result: Evaluation, classes: tuple[str, ...], title: str) -> str:
    """Top line, per-class accuracy and (up to 12 classes) the confusion matrix, compactly."""
    lines = [title, f"loss {result.loss:.4f}  top-1 {result.top1:.2%}  top-5 {result.top5:.2%}"]
    width = max(len(name) for name in classes)
    per_class = result.per_class
    lines.append("per-class accuracy:")
    for start in range(0, len(classes), 4):
        lines.append("  " + "   ".join(f"{classes[i]:>{width}} {per_class[i]:7.2%}"
                                        for i in range(start, min(start + 4, len(classes)))))
    if len(classes) <= 12:
        short = [name[:5] for name in classes]
        lines.append("confusion (rows: true, columns: predicted):")
        lines.append(" " * (width + 2) + " ".join(f"{name:>5}" for name in short))
        for name, row in zip(classes, result.confusion.tolist()):
            lines.append(f"  {name:>{width}} " + " ".join(f"{value:>5}" for value in row))
    return "\n".join(lines)


LEVEL_COLUMNS = [("level", 5), ("resolution", 10), ("u ch", 6), ("f ch", 6), ("steps", 5)]
STAGE_COLUMNS = [("stage", 5), ("resolution", 10), ("channels", 8), ("blocks", 6)]
TOTALS = [("parameters", 12), ("GFLOPs", 8)]


def line(cells: list[str], columns: list[tuple[str, int]]) -> str:
    return " ".join(f"{cell:>{width}}" for cell, (_, width) in zip(cells, columns))


def totals(row: dict[str, Any]) -> list[str]:
    return [f"{row['parameters']:,}", f"{row['gflops']:.3f}"]


def pixels(resolution: int) -> str:
    return f"{resolution}x{resolution}"


def format_table(name: str, facts: dict[str, Any], shape: dict[str, int]) -> str:
    """The level (or stage) table, then the parameter and FLOP totals."""
    by_level = not facts["stages"]
    columns = (LEVEL_COLUMNS if by_level else STAGE_COLUMNS) + TOTALS
    lines = [f"{name} on {shape['channels']}x{shape['image_size']}x{shape['image_size']} images, "
             f"{shape['num_classes']} classes", line([title for title, _ in columns], columns)]
    stem = facts["stem"]
    if stem is not None:
        width = ["-", str(stem["channels"])] if by_level else [str(stem["channels"])]
        lines.append(line(["stem", pixels(stem["resolution"]), *width, "-", *totals(stem)], columns))
    for row in facts["levels"]:
        lines.append(line([str(row["level"]), pixels(row["resolution"]), str(row["channels_u"]),
                           str(row["channels_f"]), str(row["smoothing_steps"]), *totals(row)], columns))
    for row in facts["stages"]:
        lines.append(line([str(row["stage"]), pixels(row["resolution"]), str(row["channels"]),
                           str(row["blocks"]), *totals(row)], columns))
    blanks = [""] * (len(columns) - len(TOTALS) - 1)
    lines.append(line(["head", *blanks, *totals(facts["head"])], columns))
    lines.append(f"parameters: {facts['parameters']:,}")
    lines.append(f"forward: {facts['gflops_per_image']:.3f} GFLOPs per image")
    return "\n".join(lines)


def residual_table(result: SolveResult) -> str:
    """One line per cycle: residual norm, relative residual and the reduction of that cycle."""
    lines = [f"{'cycle':>5}  {'residual':>10}  {'relative':>10}  {'reduction':>9}"]
    norms = result.residual_norms
    for cycle, (norm, relative) in enumerate(zip(norms, result.relative_residuals)):
        reduction = f"{norm / norms[cycle - 1]:9.3f}" if cycle and norms[cycle - 1] else ""
        lines.append(f"{cycle:>5}  {norm:10.3e}  {relative:10.3e}  {reduction:>9}")
    return "\n".join(lines)
