// Which PostgreSQL server Tally uses: DATABASE_URL, or the embedded one in .data/postgres.
import { startEmbedded } from "./embedded.ts";

export const EMBEDDED_DATA_DIR = new URL("../.data/postgres", import.meta.url).pathname;

export type DatabaseTarget = {
  url: string;
  /** What start-up prints: "embedded (.data/postgres)" or the host and database of the URL. */
  description: string;
  stop(): Promise<void>;
};

export async function openDatabase(databaseUrl: string | undefined): Promise<DatabaseTarget> {
  if (databaseUrl) {
    const url = new URL(databaseUrl);
    return {
      url: databaseUrl,
      description: `${url.hostname}:${url.port || 5432}${url.pathname}`,
      stop: async () => {},
    };
  }
  const embedded = await startEmbedded(EMBEDDED_DATA_DIR);
  return { url: embedded.url, description: "embedded (.data/postgres)", stop: embedded.stop };
}
