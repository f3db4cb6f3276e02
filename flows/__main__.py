from opsflow.flows.cli import main

main()
