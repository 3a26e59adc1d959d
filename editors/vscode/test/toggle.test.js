'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const { SuggestionToggle } = require('../out/toggle');

function memento(initial = {}) {
  const values = { ...initial };
  return { values, get: (key) => values[key], update: async (key, value) => { values[key] = value; } };
}

test('suggestions start enabled and toggle off and on, persisted', async () => {
  const store = memento();
  const toggle = new SuggestionToggle(store);
  const changes = [];
  toggle.onDidChange((enabled) => changes.push(enabled));
  assert.equal(toggle.enabled, true);
  assert.equal(await toggle.toggle(), false);
  assert.equal(toggle.enabled, false);
  assert.equal(await toggle.toggle(), true);
  assert.deepEqual(changes, [false, true]);
  assert.deepEqual(Object.values(store.values), [true]);
});

test('the stored state survives a restart; setting the same state is not a change', async () => {
  const store = memento();
  await new SuggestionToggle(store).set(false);
  const restarted = new SuggestionToggle(store);
  assert.equal(restarted.enabled, false);
  let changes = 0;
  restarted.onDidChange(() => changes++);
  await restarted.set(false);
  assert.equal(changes, 0);
});
