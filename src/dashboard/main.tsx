// The console's entry: take a token from the URL fragment, then mount.
import 'uplot/dist/uPlot.min.css';
import './styles.css';
import { render } from 'preact';
import { App } from './App.js';
import { takeTokenFromFragment } from './session.js';

takeTokenFromFragment();
render(<App />, document.getElementById('app')!);
