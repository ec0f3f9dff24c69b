import 'uplot/dist/uPlot.min.css';
import './style.css';
import { render } from 'preact';
import { useEffect, useLayoutEffect, useState } from 'preact/hooks';
import { ExperimentPage } from './pages/experiment-page';
import { ExperimentsPage } from './pages/experiments-page';
import { ModelPage } from './pages/model-page';
import { ModelsPage } from './pages/models-page';
import { RunPage } from './pages/run-page';
import { RunsPage } from './pages/runs-page';
import { SweepPage } from './pages/sweep-page';
import { focusHeading } from './focus';
import { routeKey, useRoute, type Route } from './router';

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
  useLayoutEffect(() => {
    // Moving to another page puts the focus on its heading, as a screen reader expects: in the
    // render that shows the page, before it is painted.
    focusHeading();
  }, [routeKey(route)]);
  const section = route.page === 'run' || route.page === 'runs' ? 'runs' : route.page === 'model' || route.page === 'models' ? 'models' : 'experiments';
  return (
    <>
      <header class="top">
        <a class="brand" href="#/">runctl</a>
        <nav aria-label="Sections">
          <a href="#/" aria-current={section === 'runs' ? (route.page === 'runs' ? 'page' : 'true') : undefined}>
            Runs
          </a>
          <a href="#/experiments" aria-current={section === 'experiments' ? (route.page === 'experiments' ? 'page' : 'true') : undefined}>
            Experiments
          </a>
          <a href="#/models" aria-current={section === 'models' ? (route.page === 'models' ? 'page' : 'true') : undefined}>
            Models
          </a>
        </nav>
        {config !== undefined && (
          <span class="endpoint" title="The API this dashboard reads">
            {config.local ? 'local backend' : 'API'} · {config.endpoint}
          </span>
        )}
      </header>
      <main id="main">
        <Page route={route} />
      </main>
    </>
  );
}

function Page({ route }: { route: Route }) {
  switch (route.page) {
    case 'run':
      return <RunPage key={route.runId} runId={route.runId} />;
    case 'experiments':
      return <ExperimentsPage />;
    case 'experiment':
      return <ExperimentPage key={route.name} name={route.name} />;
    case 'sweep':
      return <SweepPage key={route.sweepId} sweepId={route.sweepId} />;
    case 'models':
      return <ModelsPage />;
    case 'model':
      return <ModelPage key={route.name} name={route.name} />;
    default:
      return <RunsPage filter={route} />;
  }
}

const root = document.getElementById('app');
if (root !== null) {
  root.textContent = '';
  render(<App />, root);
}
