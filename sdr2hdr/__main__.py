from sdr2hdr.cli import main

main()
