import 'uplot/dist/uPlot.min.css';
import './style.css';
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { RunPage } from './pages/run-page';
import { RunsPage } from './pages/runs-page';
import { useRoute } from './router';

interface UiConfig {
  endpoint: string;
  local: boolean;
}

function App() {
  const route = useRoute();
  const [config, setConfig] = useState<UiConfig | undefined>();
  useEffect(() => {
    fetch('/config.json')
      .then((r) => r.json() as Promise<UiConfig>)
      .then(setConfig)
      .catch(() => undefined);
  }, []);
  useEffect(() => {
    // Moving to another page puts the focus on its heading, as a screen reader expects.
    document.querySelector<HTMLElement>('main h1')?.focus();
  }, [route.page, route.page === 'run' ? route.runId : '']);
  return (
    <>
      <header class="top">
        <a class="brand" href="#/">runctl</a>
        <nav aria-label="Sections">
          <a href="#/" aria-current={route.page === 'runs' ? 'page' : undefined}>Runs</a>
        </nav>
        {config !== undefined && (
          <span class="endpoint" title="The API this dashboard reads">
            {config.local ? 'local backend' : 'API'} · {config.endpoint}
          </span>
        )}
      </header>
      <main id="main">{route.page === 'run' ? <RunPage key={route.runId} runId={route.runId} /> : <RunsPage filter={route} />}</main>
    </>
  );
}

const root = document.getElementById('app');
if (root !== null) {
  root.textContent = '';
  render(<App />, root);
}
