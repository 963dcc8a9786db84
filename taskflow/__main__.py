from taskflow.cli import main

main()
