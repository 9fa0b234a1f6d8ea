# An ll.sisyphus job with nothing to do: it logs only delayed lines and returns None, so
# ll.sisyphus prints nothing at all (delayed lines are dropped, the uneventful result too).
from ll import sisyphus

class Check(sisyphus.Job):
	projectname = "ACME.FooBar"
	jobname = "Check"
	maxtime = 60

	def execute(self):
		self.log.delay("looked for new files")
		self.log.delay.info("none found")
		return None

if __name__ == "__main__":
	sisyphus.executewithargs(Check())
