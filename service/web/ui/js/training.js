// Training as a task (POST /model/{ctx}/train?async=1) with a live progress bar: the bar follows
// the task's Server-Sent Events (read through api.js with fetch, since EventSource cannot send
// the Authorization header), and the task can be cancelled meanwhile.

/* Show {done, total, message} on a <progress>: a known total fills it, none leaves it moving. */
export function showProgress(bar, status, progress) {
  if (!progress) {
    return;
  }
  if (progress.total) {
    bar.max = progress.total;
    bar.value = Math.min(progress.done || 0, progress.total);
  } else {
    bar.removeAttribute("value");
  }
  if (progress.message) {
    status.textContent = progress.message;
  }
}

/*
 * Train model on sources; resolves with the finished task, rejects with the server's message
 * when the task failed (or "Training was cancelled"). onTask(id) hears the task's id as soon as
 * the server made it (for a Cancel button).
 */
export async function trainWithProgress(api, model, sources, { bar, status, onTask = () => {} }) {
  bar.removeAttribute("value");
  status.textContent = `Training ${model}: queued…`;
  const accepted = await api.trainAsync(model, sources);
  onTask(accepted.task_id);
  const task = await api.waitTask(accepted.task_id, {
    onProgress: (progress) => showProgress(bar, status, progress),
    onStatus: (current) => {
      if (current.status === "RUNNING" && !current.progress) {
        status.textContent = `Training ${model}…`;
      }
      showProgress(bar, status, current.progress);
    },
  });
  if (task.status === "SUCCESS") {
    bar.max = 1;
    bar.value = 1;
    return task;
  }
  if (task.status === "CANCELLED") {
    throw new Error("Training was cancelled");
  }
  throw new Error(task.error || `Training ended ${task.status}`);
}
