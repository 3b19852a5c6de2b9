import sys

rows = sum(1 for _ in open(sys.argv[1])) - 1
print(f"{rows} rows")
