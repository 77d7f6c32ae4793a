print("from python", end="")
