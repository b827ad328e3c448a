"""README's sample outputs, made by the commands they show.

    python scripts/readme_samples.py           # rewrites every README block that starts with `$ mgnet info ...`
    python scripts/readme_samples.py --check   # exit 1, naming the samples that differ (tests/test_readme.py)

Each block is a ``` fence whose first line is ``$ mgnet info <overrides>``; the lines after it are
replaced by what ``mgnet info <overrides>`` prints now (run in-process: same config, same code).
"""

import argparse
import contextlib
import io
import re
import shlex
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
SAMPLE = re.compile(r"^```\n\$ (mgnet info[^\n]*)\n(.*?)^```$", re.S | re.M)


def output(command: str) -> str:
    """What ``command`` (``mgnet info <overrides>``) prints."""
    from hydra import compose, initialize_config_dir

    from mgnet_cli.cli import config_dir, info, register_configs

    register_configs()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose("info", overrides=shlex.split(command)[2:])
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        info.run(cfg)
    return printed.getvalue()


def stale(text: str) -> list[tuple[str, str, str]]:
    """(command, README's output, the command's output) of every sample that differs."""
    found = [(match[1], match[2], output(match[1])) for match in SAMPLE.finditer(text)]
    return [(command, shown, now) for command, shown, now in found if shown != now]


def regenerated(text: str) -> str:
    return SAMPLE.sub(lambda match: f"```\n$ {match[1]}\n{output(match[1])}```", text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 if a sample is stale")
    args = parser.parse_args()
    text = README.read_text()
    if args.check:
        differing = stale(text)
        for command, _, _ in differing:
            print(f"README.md: the sample of `{command}` is stale", file=sys.stderr)
        sys.exit(1 if differing else 0)
    README.write_text(regenerated(text))


if __name__ == "__main__":
    main()
