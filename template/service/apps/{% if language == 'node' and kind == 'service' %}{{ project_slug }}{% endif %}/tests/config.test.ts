import { describe, expect, it } from "vitest";

import { ConfigError, DEFAULTS, loadSettings } from "../src/config.js";

describe("loadSettings", () => {
  it("uses the defaults when nothing is set", () => {
    expect(loadSettings({})).toEqual(DEFAULTS);
    expect(DEFAULTS).toEqual({ port: 8080, logLevel: "info", shutdownTimeout: 20 });
  });

  it("reads PORT, LOG_LEVEL and SHUTDOWN_TIMEOUT", () => {
    const settings = loadSettings({ PORT: "9000", LOG_LEVEL: " DEBUG ", SHUTDOWN_TIMEOUT: "2.5" });

    expect(settings).toEqual({ port: 9000, logLevel: "debug", shutdownTimeout: 2.5 });
  });

  it.each(["0", "65536", "80a", "-1", "", "8080.5"])("rejects PORT=%j", (port) => {
    expect(() => loadSettings({ PORT: port })).toThrow(ConfigError);
    expect(() => loadSettings({ PORT: port })).toThrow(/^PORT must be a number from 1 to 65535/);
  });

  it.each(["verbose", "", "silent"])("rejects LOG_LEVEL=%j", (level) => {
    expect(() => loadSettings({ LOG_LEVEL: level })).toThrow(/^LOG_LEVEL must be a level name/);
  });

  it.each(["-1", "soon", "", "Infinity", "NaN"])("rejects SHUTDOWN_TIMEOUT=%j", (timeout) => {
    expect(() => loadSettings({ SHUTDOWN_TIMEOUT: timeout })).toThrow(
      /^SHUTDOWN_TIMEOUT must be a number of seconds >= 0/,
    );
  });

  it("accepts a zero SHUTDOWN_TIMEOUT", () => {
    expect(loadSettings({ SHUTDOWN_TIMEOUT: "0" }).shutdownTimeout).toBe(0);
  });
});
