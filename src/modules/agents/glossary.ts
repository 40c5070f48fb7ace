// Plain-Portuguese explanations of public-procurement terms, for concept questions answered without a model.

interface Entry {
  /** Accent-free lowercase words that name the concept. */
  keys: RegExp;
  title: string;
  text: string;
}

const ENTRIES: Entry[] = [
  {
    keys: /fracionamento|fracionar|fracionad/,
    title: 'Fracionamento de despesa',
    text: 'é dividir uma compra que deveria ser única em várias menores, cada uma abaixo do limite de dispensa de licitação, para escapar da disputa obrigatória. A Lei 14.133/2021 (art. 75, § 1º) manda somar as despesas com o mesmo objeto no mesmo exercício para aferir o limite. Sinais típicos: vários contratos do mesmo órgão, com o mesmo objeto e o mesmo fornecedor, em poucas semanas, todos um pouco abaixo do teto (em 2025, cerca de R$ 62,7 mil para compras e serviços comuns).',
  },
  {
    keys: /inexigibilidade|inexigivel/,
    title: 'Inexigibilidade de licitação',
    text: 'é quando a disputa é impossível: só um fornecedor pode atender (exclusividade), serviços técnicos de notória especialização ou artistas consagrados (Lei 14.133/2021, art. 74). Precisa de justificativa documentada do preço e da escolha.',
  },
  {
    keys: /dispensa/,
    title: 'Dispensa de licitação',
    text: 'é a contratação direta que a lei permite mesmo havendo competição possível: compras de pequeno valor, emergências, entre outras hipóteses do art. 75 da Lei 14.133/2021. O uso repetido da dispensa para o mesmo objeto pode indicar fracionamento.',
  },
  {
    keys: /superfaturamento|sobrepreco/,
    title: 'Sobrepreço e superfaturamento',
    text: 'sobrepreço é um preço contratado acima do de mercado; superfaturamento é o dano efetivo ao pagar por ele (ou por menos do que foi entregue). Comparar o valor com contratos semelhantes de outros órgãos é o primeiro teste.',
  },
  {
    keys: /aditivo|aditamento/,
    title: 'Termo aditivo',
    text: 'altera um contrato em vigor. Acréscimos de valor são limitados a 25% do valor inicial (50% em reformas), conforme o art. 125 da Lei 14.133/2021; aumentos acima disso merecem atenção.',
  },
  {
    keys: /pregao/,
    title: 'Pregão',
    text: 'é a modalidade de licitação para bens e serviços comuns, em que os fornecedores disputam com lances o menor preço, quase sempre em formato eletrônico.',
  },
  {
    keys: /licitacao|licitacoes/,
    title: 'Licitação',
    text: 'é o procedimento público que escolhe quem vende ao governo, em igualdade de condições, regido hoje pela Lei 14.133/2021 (modalidades: pregão, concorrência, concurso, leilão e diálogo competitivo).',
  },
];

/** The explanation of the first concept the question names, or null. */
export function explainConcept(question: string): { title: string; text: string } | null {
  const q = question
    .toLowerCase()
    .normalize('NFD')
    .replace(/[\u0300-\u036f]/g, '');
  const hit = ENTRIES.find((e) => e.keys.test(q));
  return hit ? { title: hit.title, text: hit.text } : null;
}
