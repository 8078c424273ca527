"""Command-line options shared by commands in different modules (cli, load, web)."""

import typer

# What --broker takes, for every command that runs an exercise (run, load, serve):
# brokers/README.md says what each gives.
BROKER_HELP = (
    "embedded (default), mosquitto, nats (a 3-node NATS cluster; nats:N for N nodes), or an "
    "mqtt:// / mqtts:// URL, several nodes as mqtt://h1:p1,h2:p2 (clients fail over)"
)

# One definition for every command that starts a broker (run, replay, load, serve):
# see simulator.run.security for what it adds to the protection that is always on.
SECURE_OPTION = typer.Option(
    "--secure",
    help="TLS-only broker with generated certificates, secret signature keys (README: Security)",
)

# A scenario's `seed` holds these (scenario.model.Scenario.seed); a seed given on the
# command line is held to the same range, so a typo such as -1 is refused by name.
MAX_SEED = 2**63 - 1
SEED_OPTION = typer.Option(help="override the scenario's seed", min=0, max=MAX_SEED)
