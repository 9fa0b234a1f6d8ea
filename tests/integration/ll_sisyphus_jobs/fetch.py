# The Fetch example of ll.sisyphus' documentation, unmodified
# (https://python.livinglogic.de/sisyphus.html). The tests point it at a local HTTP server
# through the job's `http_proxy`, which urllib honours.
import os
import urllib.request
from ll import sisyphus

class Fetch(sisyphus.Job):
	projectname = "ACME.FooBar"
	jobname = "Fetch"
	argdescription = "fetch http://www.python.org/ and save it to a local file"
	maxtime = 3 * 60

	def __init__(self):
		self.url = "http://www.python.org/"
		self.tmpname = f"Fetch_Tmp_{os.getpid()}.html"
		self.officialname = "Python.html"

	def execute(self):
		self.log(f"fetching data from {self.url!r}")
		data = urllib.request.urlopen(self.url).read()
		datasize = len(data)
		self.log(f"writing file {self.tmpname!r} ({datasize:,} bytes)")
		with open(self.tmpname, "wb") as f:
			f.write(data)
		self.log(f"renaming file {self.tmpname!r} to {self.officialname!r}")
		os.rename(self.tmpname, self.officialname)
		return f"cached {self.url!r} as {self.officialname!r} ({datasize:,} bytes)"

if __name__ == "__main__":
	sisyphus.executewithargs(Fetch())
