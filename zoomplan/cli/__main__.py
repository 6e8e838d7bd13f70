from zoomplan.cli import main

main()
