from opsflow.lab.cli import app

app(prog_name="opsflow lab")
