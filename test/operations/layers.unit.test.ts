// The layers of src/ hold: no import cycle between two files, nor between two folders (a file of folder A
// importing one of B while some file of B imports, directly or through others, one of A). Type-only imports
// count: they couple the code as much as any. The graph is madge's (every static and dynamic import); anyone can
// print it: `npx madge --extensions ts --ts-config tsconfig.json --exclude generated src`.
import madge from "madge";
import { beforeAll, describe, expect, test } from "vitest";

let graph: Record<string, string[]>;
let fileCycles: string[][];

beforeAll(async () => {
  const result = await madge("src", {
    fileExtensions: ["ts"],
    tsConfig: "tsconfig.json",
    excludeRegExp: [/generated\//, /\.d\.ts$/],
  });
  // Paths relative to src/; imports that leave it (schema/, the Prisma client) are not src's layers.
  graph = Object.fromEntries(
    Object.entries(result.obj()).map(([file, imports]) => [file, imports.filter((to) => !to.startsWith(".."))]),
  );
  fileCycles = result.circular();
}, 60_000);

/** A file's folder: its first directory under src/, or "src" for the files at the top. */
const folderOf = (file: string) => (file.includes("/") ? file.slice(0, file.indexOf("/")) : "src");

/** The strongly connected groups of more than one node (Tarjan): each is a cycle, or several. */
function cycles(edges: Map<string, Set<string>>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const found: string[][] = [];
  const visit = (node: string) => {
    index.set(node, next);
    low.set(node, next++);
    stack.push(node);
    for (const to of edges.get(node) ?? []) {
      if (!index.has(to)) {
        visit(to);
        low.set(node, Math.min(low.get(node)!, low.get(to)!));
      } else if (stack.includes(to)) low.set(node, Math.min(low.get(node)!, index.get(to)!));
    }
    if (low.get(node) === index.get(node)) {
      const group: string[] = [];
      let member: string;
      do {
        member = stack.pop()!;
        group.push(member);
      } while (member !== node);
      if (group.length > 1) found.push(group.sort());
    }
  };
  for (const node of edges.keys()) if (!index.has(node)) visit(node);
  return found;
}

describe("the layers of src/", () => {
  test("the import graph covers the code: every folder, and the write path", () => {
    const folders = new Set(Object.keys(graph).map(folderOf));
    for (const folder of [
      "http",
      "resolvers",
      "services",
      "loaders",
      "caching",
      "platform",
      "events",
      "workers",
      "domain",
    ]) {
      expect(folders).toContain(folder);
    }
    expect(graph["services/likes.ts"]).toContain("services/write.ts");
  });

  test("no two files import each other, directly or through others", () => {
    expect(fileCycles).toEqual([]);
  });

  test("no two folders import each other, directly or through others", () => {
    const edges = new Map<string, Set<string>>();
    for (const [file, imports] of Object.entries(graph)) {
      for (const to of imports) {
        const [a, b] = [folderOf(file), folderOf(to)];
        if (a === b) continue;
        if (!edges.has(a)) edges.set(a, new Set());
        edges.get(a)!.add(b);
      }
    }
    // Each cycle with the imports that make it, so a failure says which line to move.
    const report = cycles(edges).map((group) =>
      Object.entries(graph).flatMap(([file, imports]) =>
        imports
          .filter(
            (to) => folderOf(file) !== folderOf(to) && group.includes(folderOf(file)) && group.includes(folderOf(to)),
          )
          .map((to) => `${file} -> ${to}`),
      ),
    );
    expect(report).toEqual([]);
  });

  test("the check sees a cycle when there is one", () => {
    const edges = new Map([
      ["a", new Set(["b"])],
      ["b", new Set(["c"])],
      ["c", new Set(["a"])],
      ["d", new Set(["a"])],
    ]);
    expect(cycles(edges)).toEqual([["a", "b", "c"]]);
  });
});
