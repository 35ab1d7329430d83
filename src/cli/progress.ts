/** A progress bar on a terminal, a line per stage elsewhere (CI logs, files). */
export function progressReporter(stream: NodeJS.WriteStream = process.stderr) {
  let lastStage = '';
  let lastDraw = 0;
  return (done: number, total: number, stage: string) => {
    const now = Date.now();
    const finished = done >= total;
    if (stream.isTTY) {
      if (!finished && stage === lastStage && now - lastDraw < 100) return;
      const width = 30;
      const filled = total > 0 ? Math.round((done / total) * width) : width;
      const percent = total > 0 ? Math.floor((done / total) * 100) : 100;
      stream.write(
        `\r${stage.padEnd(14)} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${String(percent).padStart(3)}% ${done}/${total}`,
      );
      if (finished) stream.write('\n');
    } else if (stage !== lastStage || finished) {
      if (finished) stream.write(`${stage}: ${done}/${total} done\n`);
    }
    lastStage = stage;
    lastDraw = now;
  };
}
