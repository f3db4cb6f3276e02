from opsflow.flows.cli.main import run_app
from opsflow.lab.cli import app

run_app(app, "opsflow lab")
