// Raft's additions to the stateright Explorer page (served by `model explore`): a key to the
// notation of the state table, and a clear message when the address names a path that does not
// exist in the model.
(function () {
  const banner = document.createElement('div');
  banner.id = 'raft-invalid-path';
  banner.style.cssText =
    'display:none;background:#a00;color:#fff;padding:8px 12px;font-weight:bold';
  document.body.insertBefore(banner, document.body.firstChild);

  const legend = document.createElement('div');
  legend.id = 'raft-legend';
  legend.className = 'font-code font-small margin-bottom-small';
  legend.textContent = 'Key: LEGEND';
  const right = document.querySelector('.main-flex-right');
  if (right) {
    right.insertBefore(legend, right.children[1] || null);
  }

  async function checkPath() {
    const hash = window.location.hash.split('?')[0];
    banner.style.display = 'none';
    if (!hash.startsWith('#/steps/')) {
      return;
    }
    const path = hash.substring('#/steps'.length);
    const answer = await fetch('/.path' + path).then((r) => r.json());
    if (!answer.valid) {
      banner.textContent = 'This path does not exist in the model: ' + answer.message +
        '. What the page shows below is not the state it names.';
      banner.style.display = 'block';
    }
  }
  window.addEventListener('hashchange', checkPath);
  checkPath();
})();
