// `npm run bench:images`: what the images function costs and saves. Makes phone-like photos (12 MP JPEG with EXIF,
// 12 MP HEIC through libheif when `heif-enc` is installed, a 48 MP JPEG), then, in a child process pinned to one
// core (as one Lambda vCPU), runs the images function's transform (src/images/transform.ts) on them one at a time:
// photos per second per core, and the child's peak RSS. Then the bytes a feed page's photos cost at 1080 px WebP
// (what the apps ask for) against the originals.
//   node bench/images.ts [--photos 8] [--out bench/results]
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import sharp from "sharp";

const { values } = parseArgs({
  options: {
    photos: { type: "string", default: "8" },
    out: { type: "string" },
    child: { type: "string" },
  },
});

/** A photo-like image: smooth gradients, a subject, and sensor-like noise (so it compresses like a photo). */
async function photoLike(width: number, height: number, seed: number): Promise<Buffer> {
  const small = Buffer.alloc(64 * 48 * 3);
  for (let i = 0; i < small.length; i++) small[i] = (Math.sin(i * 0.37 + seed) * 0.5 + 0.5) * 200 + 20;
  const base = await sharp(small, { raw: { width: 64, height: 48, channels: 3 } })
    .resize(width, height, { kernel: "cubic" })
    .raw()
    .toBuffer();
  const noise = await sharp({
    create: { width, height, channels: 3, background: "#808080", noise: { type: "gaussian", mean: 128, sigma: 6 } },
  })
    .raw()
    .toBuffer();
  for (let i = 0; i < base.length; i++)
    base[i] = Math.max(0, Math.min(255, (base[i] as number) + (noise[i] as number) - 128));
  return sharp(base, { raw: { width, height, channels: 3 } })
    .jpeg({ quality: 92 })
    .withExif({
      IFD0: { Make: "Bench", Model: "12MP" },
      IFD3: {
        GPSLatitudeRef: "N",
        GPSLatitude: "48/1 51/1 2400/100",
        GPSLongitudeRef: "E",
        GPSLongitude: "2/1 21/1 300/100",
      },
    })
    .withMetadata({ orientation: 6 })
    .toBuffer();
}

/**
 * This process's peak resident memory (VmHWM). Not `resourceUsage().maxRSS`: Linux carries that over `exec`, so a
 * child would report its parent's peak (the parent holds the 48 MP photo while making it).
 */
function peakRssMiB(): number {
  const line = readFileSync("/proc/self/status", "utf8").match(/^VmHWM:\s+(\d+) kB/m);
  return line ? Number(line[1]) / 1024 : process.resourceUsage().maxRSS / 1024;
}

if (values.child) {
  // The child: process each file once (warm-up excluded), one at a time, on one core.
  const { makeVariants } = await import("../src/images/transform.ts");
  const { LADDERS } = await import("../src/images/variants.ts");
  sharp.concurrency(1);
  const files = JSON.parse(values.child) as string[];
  await makeVariants(readFileSync(files[0] as string), LADDERS.POST_PHOTO);
  const started = performance.now();
  const made = [];
  const rssMiB: number[] = [];
  for (const file of files) {
    const result = await makeVariants(readFileSync(file), LADDERS.POST_PHOTO);
    rssMiB.push(Math.round(process.memoryUsage().rss / 1048576));
    made.push(
      Object.fromEntries(result.variants.map((v) => [`${v.width}.${v.format}`, v.bytes])) as Record<string, number>,
    );
  }
  const seconds = (performance.now() - started) / 1000;
  process.stdout.write(JSON.stringify({ seconds, photos: files.length, maxRssMiB: peakRssMiB(), rssMiB, made }));
  process.exit(0);
}

const dir = mkdtempSync(join(tmpdir(), "shutter-bench-images-"));
const count = Number(values.photos);
const say = (line: string) => process.stderr.write(`${line}\n`);

say(`images: making ${count} phone-like 12 MP JPEGs (4032 × 3024)…`);
const jpegs: string[] = [];
for (let i = 0; i < count; i++) {
  const file = join(dir, `photo-${i}.jpg`);
  writeFileSync(file, await photoLike(4032, 3024, i));
  jpegs.push(file);
  say(`  ${i + 1}/${count}`);
}
const heifEnc = spawnSync("heif-enc", ["--version"]).status === 0 || spawnSync("which", ["heif-enc"]).status === 0;
const heics: string[] = [];
if (heifEnc) {
  say("images: encoding two of them as HEIC (heif-enc, x265)…");
  for (const jpeg of jpegs.slice(0, 2)) {
    const file = jpeg.replace(/\.jpg$/, ".heic");
    execFileSync("heif-enc", ["-q", "50", "-o", file, jpeg], { stdio: "ignore" });
    heics.push(file);
  }
}
say("images: making a 48 MP JPEG (8000 × 6000)…");
const huge = join(dir, "huge.jpg");
writeFileSync(huge, await photoLike(8000, 6000, 99));

/** Runs the transform on `files` in a child pinned to one core. */
function measure(label: string, files: string[]) {
  say(`images: ${label}…`);
  const pin = spawnSync("which", ["taskset"]).status === 0 ? ["taskset", "-c", "0"] : [];
  const [command, ...args] = [
    ...pin,
    process.execPath,
    new URL(import.meta.url).pathname,
    "--child",
    JSON.stringify(files),
  ];
  const child = spawnSync(command as string, args, { encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
  if (child.status !== 0) throw new Error(`${label}: ${child.stderr}`);
  const result = JSON.parse(child.stdout) as {
    seconds: number;
    photos: number;
    maxRssMiB: number;
    rssMiB: number[];
    made: Record<string, number>[];
  };
  const perSecond = result.photos / result.seconds;
  say(
    `  ${perSecond.toFixed(2)} photos/s on one core (${((result.seconds / result.photos) * 1000).toFixed(0)} ms each), peak RSS ${result.maxRssMiB.toFixed(0)} MiB (RSS after each: ${result.rssMiB.join(", ")} MiB)`,
  );
  return {
    label,
    photos: result.photos,
    perSecondPerCore: perSecond,
    msEach: (result.seconds / result.photos) * 1000,
    maxRssMiB: result.maxRssMiB,
    made: result.made,
  };
}

const jpeg12 = measure("12 MP JPEG", jpegs);
const heic12 = heics.length ? measure("12 MP HEIC", heics) : undefined;
const jpeg48 = measure("48 MP JPEG", [huge, huge]);

// A feed page: 20 posts of one photo each (most posts have one), at what the apps ask for.
const originalBytes = jpegs.map((file) => readFileSync(file).length);
const page = Array.from({ length: 20 }, (_, i) => i % jpegs.length);
const pageOriginals = page.reduce((sum, i) => sum + (originalBytes[i] as number), 0);
const pageWebp1080 = page.reduce(
  (sum, i) => sum + ((jpeg12.made[i] as Record<string, number>)["1080.webp"] as number),
  0,
);
const pageAvif1080 = page.reduce(
  (sum, i) => sum + ((jpeg12.made[i] as Record<string, number>)["1080.avif"] as number),
  0,
);
const pageJpeg1080 = page.reduce(
  (sum, i) => sum + ((jpeg12.made[i] as Record<string, number>)["1080.jpeg"] as number),
  0,
);
const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(2)} MiB`;
const feed = {
  originals: pageOriginals,
  webp1080: pageWebp1080,
  avif1080: pageAvif1080,
  jpeg1080: pageJpeg1080,
};
say(
  `images: a feed page (20 photos): originals ${mib(pageOriginals)}, 1080 px WebP ${mib(pageWebp1080)} (${(pageOriginals / pageWebp1080).toFixed(0)}× less), AVIF ${mib(pageAvif1080)}, JPEG ${mib(pageJpeg1080)}`,
);

const results = {
  when: new Date().toISOString(),
  node: process.version,
  runs: [jpeg12, heic12, jpeg48].filter(Boolean).map((run) => ({ ...run, made: undefined })),
  feedPage: feed,
};
if (values.out) {
  mkdirSync(values.out, { recursive: true });
  writeFileSync(join(values.out, "images.json"), `${JSON.stringify(results, null, 2)}\n`);
  say(`images: wrote ${join(values.out, "images.json")}`);
}
console.log(JSON.stringify(results, null, 2));
