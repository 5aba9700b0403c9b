// Training with a progress bar. POST /model/{ctx}/train answers when training is done; the bar
// is indeterminate until then.

export async function trainWithProgress(api, model, sources, { bar, status }) {
  bar.removeAttribute("value");
  status.textContent = `Training ${model}…`;
  await api.train(model, sources);
  bar.max = 1;
  bar.value = 1;
}
