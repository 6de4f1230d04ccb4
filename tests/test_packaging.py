"""Every command of the CLI answers --help (the wheel's contents are tested in test_installed_wheel.py)."""

import subprocess
import sys

from edgewave.cli import main

# The README's walk-through uses these; the group may grow, never lose one.
DOCUMENTED = {"train", "info", "convert", "emit", "simulate", "demo", "spec"}


def help_of(*args):
    proc = subprocess.run([sys.executable, "-m", "edgewave.cli", *args, "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stdout.startswith("Usage: "), proc.stdout
    return proc.stdout


def test_cli_help_is_complete():
    commands = sorted(main.commands)
    assert DOCUMENTED <= set(commands), commands
    listing = help_of().split("Commands:", 1)[1]
    listed = {line.split()[0] for line in listing.splitlines() if line.strip()}
    assert listed == set(commands), (listed, commands)  # the top-level --help lists every command
    for name in commands:
        text = help_of(name)
        assert f" {name} " in text.splitlines()[0], text  # "Usage: python -m edgewave.cli NAME [OPTIONS]..."
        if main.commands[name].help:
            assert main.commands[name].help.split()[0] in text, text
