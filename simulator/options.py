"""Command-line options shared by commands in different modules (cli, load, web)."""

import typer

# One definition for every command that starts a broker (run, replay, load, serve):
# see simulator.run.security for what it adds to the protection that is always on.
SECURE_OPTION = typer.Option(
    "--secure",
    help="TLS-only broker with generated certificates, secret signature keys (README: Security)",
)
