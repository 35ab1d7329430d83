// Generates the SYNTHETIC demo deprivation lookup in this folder (see README.md). Not real data: the LSOA codes
// (E019xxxxx, a range no real LSOA uses) and their deciles are made up. Deterministic: run it again and the files
// are the same.  node lookups/imd/generate-synthetic.mjs
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const here = dirname(fileURLToPath(import.meta.url));
// The inward letters real postcodes use (no C, I, K, M, O or V): the demo office draws its postcodes from these.
const LETTERS = 'ABDEFGHJLNPQRSTUWXYZ';
// A made-up typical decile per outcode (1 most deprived .. 10 least), loosely inner city to outer towns.
const BASE = {
  LS1: 4,
  LS2: 3,
  LS3: 3,
  LS4: 3,
  LS5: 5,
  LS6: 4,
  LS7: 3,
  LS8: 3,
  LS9: 1,
  LS10: 2,
  LS11: 2,
  LS12: 3,
  LS13: 4,
  LS14: 2,
  LS15: 6,
  LS16: 8,
  LS17: 8,
  LS18: 8,
  LS19: 7,
  LS20: 8,
  LS21: 7,
  LS22: 9,
  LS23: 9,
  LS24: 7,
  LS25: 7,
  LS26: 6,
  LS27: 5,
  LS28: 6,
  LS29: 9,
};
let seed = 20191;
const random = () => {
  // mulberry32
  seed = (seed + 0x6d2b79f5) | 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};

const lsoaRows = ['LSOA code (2011),LSOA name (2011),Index of Multiple Deprivation (IMD) Decile'];
const postcodeRows = ['pcds,lsoa11'];
let next = 900001;
for (let n = 1; n <= 29; n++) {
  const outcode = `LS${n}`;
  for (let sector = 0; sector <= 9; sector++) {
    // Four LSOAs a sector, split by the first inward letter (5 letters each).
    for (let part = 0; part < 4; part++) {
      const code = `E01${String(next++).padStart(6, '0')}`;
      const decile = Math.min(10, Math.max(1, BASE[outcode] + Math.floor(random() * 5) - 2));
      lsoaRows.push(`${code},Synthetic ${outcode} ${sector}${'ABCD'[part]},${decile}`);
      for (const first of LETTERS.slice(part * 5, part * 5 + 5))
        for (const second of LETTERS) postcodeRows.push(`${outcode} ${sector}${first}${second},${code}`);
    }
  }
}
writeFileSync(join(here, 'synthetic-lsoa-imd.csv'), lsoaRows.join('\n') + '\n');
writeFileSync(join(here, 'synthetic-postcode-lsoa.csv.gz'), gzipSync(postcodeRows.join('\n') + '\n', { level: 9 }));
console.log(`${lsoaRows.length - 1} LSOAs, ${postcodeRows.length - 1} postcodes`);
