/**
 * A synthetic mammogram's pixels that compress like a real one (unlike random bytes): a breast-shaped half-ellipse
 * from the chest wall on a dark, slightly noisy background, with smooth tissue texture and quantum-like noise,
 * 14 bits stored in 16. Deterministic for a seed. Not an image of anyone.
 */
export function realisticMammogramPixels(width: number, height: number, seed = 42): Uint16Array {
  const pixels = new Uint16Array(width * height);
  let state = seed;
  const random = () => (state = (state * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const dy = (y - height / 2) / (height * 0.45);
      const dx = x / (width * 0.8);
      const r = dx * dx + dy * dy;
      let value = 60 + Math.round(random() * 8);
      if (r < 1) {
        const edge = Math.min(1, (1 - r) * 6);
        const tissue =
          0.5 +
          0.25 * Math.sin(x / 37 + Math.sin(y / 53) * 3) * Math.cos(y / 29 + Math.sin(x / 71) * 2) +
          0.15 * Math.sin((x + y) / 11);
        value = Math.round(1500 + edge * (6000 + 5000 * tissue) + (random() - 0.5) * 120);
      }
      pixels[y * width + x] = Math.max(0, Math.min(16383, value));
    }
  }
  return pixels;
}
