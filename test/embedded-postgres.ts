// Starts an embedded PostgreSQL (@prisma/dev) in its own process and prints its connection string: for tests
// that need a second, empty database while the file's own embedded server runs in the test process.
import { startPrismaDevServer } from "@prisma/dev";

const server = await startPrismaDevServer({
  name: `shutter-empty-${process.pid}`,
  persistenceMode: "stateless",
  port: 0,
  databasePort: 0,
  shadowDatabasePort: 0,
  streamsPort: 0,
});
process.stdout.write(`${JSON.stringify({ url: server.database.connectionString })}\n`);
const stop = async () => {
  await server.close();
  process.exit(0);
};
process.once("SIGTERM", stop);
process.once("disconnect", stop);
