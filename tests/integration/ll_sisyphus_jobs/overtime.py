# An ll.sisyphus job that runs past its own maxtime (one second): ll.sisyphus' parent process
# kills its worker child and reports a timeout.
import time
from ll import sisyphus

class Slow(sisyphus.Job):
	projectname = "ACME.FooBar"
	jobname = "Slow"
	maxtime = 1

	def execute(self):
		self.log("starting something long")
		time.sleep(30)
		return "never"

if __name__ == "__main__":
	sisyphus.executewithargs(Slow())
