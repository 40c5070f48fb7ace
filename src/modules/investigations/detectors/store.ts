// A compact columnar copy of the contracts the detectors need: typed arrays plus interned strings.

import { type ModalidadeKind, modalidadeKind, normalizeText, objetoKey } from '../../contracts/text.js';
import type { Contract } from '../types.js';

/** `day` of a contract whose date could not be read: left out of the date-based detectors. */
export const NO_DAY = -2_147_483_648;

export interface ContractStore {
  size: number;
  ids: string[];
  org: Int32Array;
  sup: Int32Array;
  mod: Int32Array;
  /** Index into objKeys, or -1 when price outliers were not requested. */
  obj: Int32Array;
  vi: Float64Array;
  vf: Float64Array;
  /** Days since 1970-01-01, or NO_DAY. */
  day: Int32Array;
  /** year * 12 + month (0-based), or NO_DAY. */
  month: Int32Array;
  orgCodes: string[];
  orgNames: string[];
  supCnpjs: string[];
  supNames: string[];
  mods: string[];
  modKinds: ModalidadeKind[];
  objKeys: string[];
  /** The first objeto seen for each key, to quote in explanations. */
  objLabels: string[];
}

export interface StoreWriter {
  store: ContractStore;
  /** Appends a page; a contract id seen before is skipped. Returns how many were kept. */
  add(batch: readonly Contract[]): number;
}

const OBJETO_CACHE_MAX = 20_000;

export function createStore(opts: { objetoKeys: boolean }): StoreWriter {
  let cap = 1024;
  const store: ContractStore = {
    size: 0,
    ids: [],
    org: new Int32Array(cap),
    sup: new Int32Array(cap),
    mod: new Int32Array(cap),
    obj: new Int32Array(cap),
    vi: new Float64Array(cap),
    vf: new Float64Array(cap),
    day: new Int32Array(cap),
    month: new Int32Array(cap),
    orgCodes: [],
    orgNames: [],
    supCnpjs: [],
    supNames: [],
    mods: [],
    modKinds: [],
    objKeys: [],
    objLabels: [],
  };
  const seen = new Set<string>();
  const orgIndex = new Map<string, number>();
  const supIndex = new Map<string, number>();
  const modIndex = new Map<string, number>();
  const objIndex = new Map<string, number>();
  // Real objetos repeat a lot ("Aquisição de material de consumo"); normalising each costs more than a lookup.
  let objetoCache = new Map<string, number>();

  function grow() {
    cap *= 2;
    const g32 = (a: Int32Array) => {
      const b = new Int32Array(cap);
      b.set(a);
      return b;
    };
    const g64 = (a: Float64Array) => {
      const b = new Float64Array(cap);
      b.set(a);
      return b;
    };
    store.org = g32(store.org);
    store.sup = g32(store.sup);
    store.mod = g32(store.mod);
    store.obj = g32(store.obj);
    store.day = g32(store.day);
    store.month = g32(store.month);
    store.vi = g64(store.vi);
    store.vf = g64(store.vf);
  }

  function intern(map: Map<string, number>, key: string, onNew: () => void): number {
    let i = map.get(key);
    if (i === undefined) {
      i = map.size;
      map.set(key, i);
      onNew();
    }
    return i;
  }

  // When one key comes with several spellings, the smallest wins: the same data in any order or
  // paging gives the same names in every explanation.
  function keepSmallest(list: string[], i: number, candidate: string) {
    const current = list[i]!;
    if (
      candidate !== current &&
      (candidate.length < current.length || (candidate.length === current.length && candidate < current))
    ) {
      list[i] = candidate;
    }
  }

  function objetoIndex(objeto: string): number {
    const cached = objetoCache.get(objeto);
    if (cached !== undefined) return cached;
    const key = objetoKey(objeto);
    const label = objeto.length > 120 ? `${objeto.slice(0, 117)}...` : objeto;
    const i = intern(objIndex, key, () => {
      store.objKeys.push(key);
      store.objLabels.push(label);
    });
    keepSmallest(store.objLabels, i, label);
    if (objetoCache.size >= OBJETO_CACHE_MAX) objetoCache = new Map();
    objetoCache.set(objeto, i);
    return i;
  }

  // Both are looked up by the raw text first: the same few spellings repeat on every page.
  const rawSup = new Map<string, number>();
  function supplierIndex(c: Contract): number {
    const cached = rawSup.get(c.cnpj_fornecedor);
    if (cached !== undefined) return cached;
    const digits = c.cnpj_fornecedor.replace(/\D/g, '');
    const key = digits.length >= 11 ? digits : c.cnpj_fornecedor.trim().toLowerCase();
    const i = intern(supIndex, key, () => {
      store.supCnpjs.push(c.cnpj_fornecedor);
      store.supNames.push(c.fornecedor);
    });
    keepSmallest(store.supCnpjs, i, c.cnpj_fornecedor);
    rawSup.set(c.cnpj_fornecedor, i);
    return i;
  }

  const rawMod = new Map<string, number>();
  function modalidadeIndex(modalidade: string): number {
    const cached = rawMod.get(modalidade);
    if (cached !== undefined) return cached;
    const i = intern(modIndex, normalizeText(modalidade), () => {
      store.mods.push(modalidade);
      store.modKinds.push(modalidadeKind(modalidade));
    });
    keepSmallest(store.mods, i, modalidade);
    rawMod.set(modalidade, i);
    return i;
  }

  function add(batch: readonly Contract[]): number {
    let kept = 0;
    for (const c of batch) {
      if (seen.has(c.id)) continue;
      seen.add(c.id);
      if (store.size === cap) grow();
      const r = store.size++;
      kept++;
      store.ids.push(c.id);
      const org = intern(orgIndex, c.orgao_codigo, () => {
        store.orgCodes.push(c.orgao_codigo);
        store.orgNames.push(c.orgao);
      });
      keepSmallest(store.orgNames, org, c.orgao);
      store.org[r] = org;
      const sup = supplierIndex(c);
      keepSmallest(store.supNames, sup, c.fornecedor);
      store.sup[r] = sup;
      store.mod[r] = modalidadeIndex(c.modalidade);
      store.obj[r] = opts.objetoKeys ? objetoIndex(c.objeto) : -1;
      const vi = Number.isFinite(c.valor_inicial) ? c.valor_inicial : 0;
      const vf = Number.isFinite(c.valor_final) ? c.valor_final : vi;
      store.vi[r] = vi;
      store.vf[r] = vf;
      const s = c.data_assinatura;
      const y = Number(s.slice(0, 4));
      const m = Number(s.slice(5, 7));
      const d = Number(s.slice(8, 10));
      if (s.length === 10 && y > 1900 && m >= 1 && m <= 12 && d >= 1 && d <= 31) {
        store.day[r] = Date.UTC(y, m - 1, d) / 86_400_000;
        store.month[r] = y * 12 + m - 1;
      } else {
        store.day[r] = NO_DAY;
        store.month[r] = NO_DAY;
      }
    }
    return kept;
  }

  return { store, add };
}
