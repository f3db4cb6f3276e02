from opsflow.flows.cli.main import main

main()
