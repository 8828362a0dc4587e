// <script src="https://tabcast-host/sdk/v1/tabcast.js"> entry point: defines window.Tabcast.
import { Tabcast } from './client/tabcast.js';

globalThis.Tabcast = Tabcast;
