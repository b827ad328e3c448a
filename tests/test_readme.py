"""README's sample outputs are what the commands print today (scripts/readme_samples.py)."""

from tests.test_scripts import load

readme_samples = load("readme_samples")


def test_readme_has_info_samples():
    commands = [match[1] for match in readme_samples.SAMPLE.finditer(readme_samples.README.read_text())]
    assert "mgnet info dataset=cifar10 model.channels=256" in commands


def test_every_mgnet_info_sample_in_the_readme_is_what_the_command_prints():
    stale = readme_samples.stale(readme_samples.README.read_text())
    assert not stale, "\n\n".join(
        f"README's sample of `{command}` is stale (regenerate: python scripts/readme_samples.py).\n"
        f"README shows:\n{shown}\nthe command prints:\n{now}" for command, shown, now in stale)


def test_regenerating_writes_the_commands_output():
    text = "intro\n```\n$ mgnet info model=resnet18 trainer=smoke\nold text\n```\nafter\n"
    fresh = readme_samples.regenerated(text)
    assert fresh.startswith("intro\n```\n$ mgnet info model=resnet18 trainer=smoke\nResNet on 3x32x32 images")
    assert "parameters: 701,466\n" in fresh and fresh.endswith("```\nafter\n") and "old text" not in fresh
    assert readme_samples.stale(fresh) == []
