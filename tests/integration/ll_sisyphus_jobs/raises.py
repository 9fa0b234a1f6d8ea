# An ll.sisyphus job that logs tagged lines inside tasks, a delayed line that is flushed by the
# first ordinary one, and then raises.
from ll import sisyphus

class Import(sisyphus.Job):
	projectname = "ACME.FooBar"
	jobname = "Import"
	maxtime = 60

	def execute(self):
		self.log.delay("reading the feed")
		for name in self.tasks(["alpha", "beta"], "feed", lambda n: n):
			self.log.xml.warning(f"can't parse {name}.xml")
		with self.task("record", "42"):
			raise ValueError("record 42 has no id")

if __name__ == "__main__":
	sisyphus.executewithargs(Import())
